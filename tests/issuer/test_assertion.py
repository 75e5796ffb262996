"""The broker's signed assertions, checked by verifiers nobody here wrote: xmlsec1 and pysaml2,
each trusting only the metadata the broker publishes."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from broker.config import Config, parse_config
from broker.errors import SessionExpired
from broker.identity import Identity, NoProof, RoleGrant
from broker.issuer.metadata import broker_metadata
from broker.issuer.mint import AssertionIssuer
from broker.mapping import map_roles
from broker.setup.metadata import check_metadata
from tests.fakes.issuer import (
    AWS_AUDIENCE,
    AWS_SIGNIN,
    aws_as_pysaml2,
    issuer_section,
    published_certificates,
    pysaml2_reads,
    signing_keys,
    xmlsec1_verifies,
)
from tests.fakes.saml_idp import Keypair

ADMIN = "arn:aws:iam::111122223333:role/Admin"
AWS = "https://aws.amazon.com/SAML/Attributes/"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
}
CLAIMS = {"department": "Engineering", "email": "alice@example.com", "sub": "alice"}


def issuer_config(keys: list[Keypair], partition: str = "aws") -> Config:
    return parse_config(
        {
            "server": {"base_url": "https://broker.example.com"},
            "aws": {"partition": partition},
            "identity_providers": {
                "gh": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["a"]}
            },
            "issuer": issuer_section(keys),
            "roles": {
                "admin": {
                    "arn": ADMIN.replace("arn:aws:", f"arn:{partition}:"),
                    "session_tags": {"Department": "{department}"},
                    "transitive_tags": ["Department"],
                    "source_identity": "{email}",
                }
            },
            "rules": [{"name": "all", "grant": "admin"}],
        }
    )


def identity(**changes: object) -> Identity:
    base = Identity(
        "oidc", "gh", "https://token.example.com", "alice", CLAIMS, datetime.now(UTC), NoProof()
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def mint(config: Config, who: Identity, clock: Callable[[], datetime] | None = None) -> str:
    grant: RoleGrant = map_roles(who, config).grants[0]
    issuer = AssertionIssuer.from_config(config, clock=clock or (lambda: datetime.now(UTC)))
    return issuer.proof(who, grant, 3600).response


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[Keypair]:
    return signing_keys(tmp_path_factory.mktemp("issuer-keys"), "current", "next", "stranger")


def test_pysaml2_as_aws_accepts_it_with_only_the_published_metadata(
    keys: list[Keypair], tmp_path: Path
) -> None:
    config = issuer_config(keys[:1])
    response = pysaml2_reads(
        aws_as_pysaml2(broker_metadata(config), tmp_path), mint(config, identity())
    )
    assert response.assertion.issuer.text == "https://broker.example.com/issuer"
    assert response.ava == {
        AWS + "Role": [f"{ADMIN},arn:aws:iam::111122223333:saml-provider/broker"],
        AWS + "RoleSessionName": ["alice"],
        AWS + "SessionDuration": ["3600"],
        AWS + "PrincipalTag:Department": ["Engineering"],
        AWS + "TransitiveTagKeys": ["Department"],
        AWS + "SourceIdentity": ["alice@example.com"],
    }


def test_xmlsec1_accepts_it_with_the_published_certificate_and_no_other(
    keys: list[Keypair], tmp_path: Path
) -> None:
    config = issuer_config(keys[:1])
    response = mint(config, identity())
    (published,) = published_certificates(broker_metadata(config))
    assert xmlsec1_verifies(response, published, tmp_path)
    assert not xmlsec1_verifies(response, keys[2].cert_pem, tmp_path)  # a wrong key


@pytest.mark.parametrize(
    "tamper",
    [
        lambda x: x.replace(b">Engineering<", b">Finance<"),
        lambda x: x.replace(b"role/Admin,", b"role/Root,"),
        lambda x: re.sub(rb'NotOnOrAfter="\d{4}', b'NotOnOrAfter="2099', x),
    ],
    ids=["tag value", "role", "expiry"],
)
def test_a_tampered_assertion_fails_both_verifiers(
    tamper: Callable[[bytes], bytes], keys: list[Keypair], tmp_path: Path
) -> None:
    config = issuer_config(keys[:1])
    xml = base64.b64decode(mint(config, identity()))
    changed = tamper(xml)
    assert changed != xml
    forged = base64.b64encode(changed).decode()
    assert not xmlsec1_verifies(forged, keys[0].cert_pem, tmp_path)
    with pytest.raises(Exception, match=r"(?i)signature"):
        pysaml2_reads(aws_as_pysaml2(broker_metadata(config), tmp_path), forged)


def test_shape_aws_documents(keys: list[Keypair]) -> None:
    """IAM "Configure SAML assertions": Destination and Recipient the partition's sign-in SAML
    endpoint, audience urn:amazon:webservices, IssueInstant now, a five-minute life."""
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    ends = now + timedelta(hours=2)
    for partition, endpoint in [
        ("aws", AWS_SIGNIN),
        ("aws-cn", "https://signin.amazonaws.cn/saml"),
    ]:
        config = issuer_config(keys[:1], partition)
        xml = base64.b64decode(mint(config, identity(session_not_on_or_after=ends), lambda: now))
        root = etree.fromstring(xml)
        assert root.get("Destination") == endpoint
        assertion = root.find("saml:Assertion", NS)
        assert assertion is not None
        assert assertion.get("IssueInstant") == "2026-03-01T12:00:00Z"
        data = assertion.find(
            "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS
        )
        assert data is not None
        assert (data.get("Recipient"), data.get("NotOnOrAfter")) == (
            endpoint,
            "2026-03-01T12:05:00Z",
        )
        assert (
            assertion.findtext(
                "saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS
            )
            == AWS_AUDIENCE
        )
        authn = assertion.find("saml:AuthnStatement", NS)
        assert authn is not None
        assert authn.get("SessionNotOnOrAfter") == "2026-03-01T14:00:00Z"
        assert f"arn:{partition}:iam::111122223333:saml-provider/broker".encode() in xml


def test_an_ended_idp_session_mints_nothing(keys: list[Keypair]) -> None:
    config = issuer_config(keys[:1])
    with pytest.raises(SessionExpired):
        mint(config, identity(session_not_on_or_after=datetime.now(UTC) - timedelta(seconds=1)))


def test_rotation_publishes_every_key_and_the_first_signs(
    keys: list[Keypair], tmp_path: Path
) -> None:
    current, following = keys[0], keys[1]
    for order in ([current, following], [following, current]):
        config = issuer_config(order)
        published = published_certificates(broker_metadata(config))
        assert len(published) == 2
        response = mint(config, identity())
        assert xmlsec1_verifies(response, published[0], tmp_path)
        assert not xmlsec1_verifies(response, published[1], tmp_path)


def test_metadata_is_what_iam_takes(keys: list[Keypair]) -> None:
    document = broker_metadata(issuer_config(keys[:2]))
    report = check_metadata(document, now=datetime.now(UTC))
    assert report.ok, report.errors
    assert report.entity_id == "https://broker.example.com/issuer"
    assert len(report.certificates) == 2
    assert 1000 <= len(document) <= 10_000_000  # IAM CreateSAMLProvider's document length
    root = etree.fromstring(document)
    sso = root.find("{*}IDPSSODescriptor/{*}SingleSignOnService")
    assert sso is not None
    assert sso.get("Location") == "https://broker.example.com/"
    assert b"PRIVATE" not in document


def test_the_proof_never_shows_itself(keys: list[Keypair]) -> None:
    config = issuer_config(keys[:1])
    who = identity()
    proof = AssertionIssuer.from_config(config).proof(who, map_roles(who, config).grants[0], 900)
    assert proof.response[:20] not in repr(proof)
