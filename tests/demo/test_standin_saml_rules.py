"""AssumeRoleWithSAML refuses what AWS refuses: the redemption window, role pairs, unknown roles, trust, tags, limits."""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import boto3
import botocore.config
import httpx
import pytest
from lxml import etree

from broker_demo.aws import AwsStandIn, serve
from tests.fakes.signed_saml import (
    ACS,
    IDP_ISSUER,
    SAML,
    SigningIdp,
    find,
    make_idp,
    saml_response,
)
from tests.fakes.trust import (
    SET_SOURCE_IDENTITY,
    TAG_SESSION,
    policy,
    saml_trust,
    statement,
)

pytestmark = pytest.mark.peers

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/other"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
OTHER_PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/elsewhere"
BROKER_ACS = "https://broker.example.com/saml/acs"
NO_RETRY = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
FULL = (TAG_SESSION, SET_SOURCE_IDENTITY)


@pytest.fixture(scope="module")
def idp() -> SigningIdp:
    return make_idp("idp.example.com")


@dataclass
class Aws:
    standin: AwsStandIn
    url: str
    now: list[datetime] = field(default_factory=lambda: [datetime.now(UTC)])

    def post(self, assertion: str, role: str = ROLE, **params: str) -> httpx.Response:
        data = {
            "Version": "2011-06-15",
            "Action": "AssumeRoleWithSAML",
            "RoleArn": role,
            "PrincipalArn": PROVIDER,
            "SAMLAssertion": assertion,
        }
        return httpx.post(f"{self.url}/", data=data | params)


def fault(response: httpx.Response) -> tuple[int, str, str]:
    root = etree.fromstring(response.content)
    code = root.findtext(f"{{{NS}}}Error/{{{NS}}}Code") or ""
    message = root.findtext(f"{{{NS}}}Error/{{{NS}}}Message") or ""
    return response.status_code, code, message


def expiration(response: httpx.Response) -> datetime:
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    text = root.findtext(f".//{{{NS}}}Credentials/{{{NS}}}Expiration")
    assert text is not None
    return datetime.fromisoformat(text)


@pytest.fixture
def aws(idp: SigningIdp) -> Iterator[Aws]:
    """A stand-in whose clock the test moves; the corp IdP registered from its metadata
    (a retired certificate first, as during a rotation); ROLE trusts it fully."""
    now = [datetime.now(UTC)]
    standin = AwsStandIn(clock=lambda: now[0])
    retired = make_idp("retired")
    standin.register_saml_provider(
        "corp", metadata=idp.metadata(IDP_ISSUER, retired.cert_pem), account_id=ACCOUNT
    )
    standin.register_role(ROLE, saml_trust(PROVIDER, extra_actions=FULL), 43200)
    with serve(standin) as url:
        yield Aws(standin, url, now)


def signed(idp: SigningIdp, **kwargs: Any) -> str:
    kwargs.setdefault("roles", [f"{ROLE},{PROVIDER}"])
    return saml_response(idp, **kwargs)


# ---------------------------------------------------------------- the 5-minute rule


def test_redeemed_within_five_minutes_of_issue_instant(aws: Aws, idp: SigningIdp) -> None:
    issued = aws.now[0]
    assertion = signed(idp, issued=issued, lifetime=timedelta(minutes=30))
    aws.now[0] = issued + timedelta(minutes=4, seconds=59)
    assert aws.post(assertion).status_code == 200
    aws.now[0] = issued + timedelta(minutes=5, seconds=1)
    assert fault(aws.post(assertion)) == (
        400,
        "ExpiredTokenException",
        "Token must be redeemed within 5 minutes of issuance",
    )
    assert [c.outcome for c in aws.standin.calls] == ["ok", "ExpiredTokenException"]


def test_botocore_sees_the_modelled_exception(aws: Aws, idp: SigningIdp) -> None:
    assertion = signed(idp, issued=aws.now[0] - timedelta(minutes=6), lifetime=timedelta(hours=1))
    client = boto3.client(
        "sts",
        endpoint_url=aws.url,
        region_name="us-east-1",
        config=NO_RETRY,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with pytest.raises(client.exceptions.ExpiredTokenException, match="within 5 minutes"):
        client.assume_role_with_saml(RoleArn=ROLE, PrincipalArn=PROVIDER, SAMLAssertion=assertion)


def test_the_window_is_configurable_so_tests_wait_seconds(idp: SigningIdp) -> None:
    standin = AwsStandIn(saml_redemption_seconds=1)
    standin.register_saml_provider("corp", [idp.cert_pem], ACCOUNT)
    standin.register_role(ROLE, saml_trust(PROVIDER))
    assertion = signed(idp)
    time.sleep(1.1)
    with serve(standin) as url:
        response = Aws(standin, url).post(assertion)
    assert fault(response)[1:] == (
        "ExpiredTokenException",
        "Token must be redeemed within 1 second of issuance",
    )
    with pytest.raises(ValueError, match="positive"):
        AwsStandIn(saml_redemption_seconds=0)


# ---------------------------------------------------------------- refusals, table-driven


@dataclass(frozen=True)
class Case:
    name: str
    assertion: Callable[[SigningIdp], str]
    code: str
    message: str = ""
    role: str = ROLE
    params: dict[str, str] = field(default_factory=dict)
    trust: dict[str, Any] | None = None  # replaces ROLE's trust policy


SUBJECT_CONFIRMATION = f"{{{SAML}}}Assertion/{{{SAML}}}Subject/{{{SAML}}}SubjectConfirmation"


def _second_confirmation(root: etree._Element) -> None:
    confirmation = find(root, SUBJECT_CONFIRMATION)
    confirmation.addnext(copy.deepcopy(confirmation))


def _no_recipient(root: etree._Element) -> None:
    del find(root, f"{SUBJECT_CONFIRMATION}/{{{SAML}}}SubjectConfirmationData").attrib["Recipient"]


def tags(count: int, size: int = 8) -> dict[str, list[str]]:
    return {f"PrincipalTag:k{i}": [secrets.token_hex(size // 2)] for i in range(count)}


DENIED = "Not authorized to perform sts:AssumeRoleWithSAML"
CASES = [
    # Role pairs (id_roles_providers_create_saml_assertions.md, the Role attribute)
    Case("pair-names-another-role", lambda i: signed(i, roles=[f"{OTHER_ROLE},{PROVIDER}"]), "AccessDenied", DENIED),
    Case("pair-names-another-provider", lambda i: signed(i, roles=[f"{ROLE},{OTHER_PROVIDER}"]), "AccessDenied", DENIED),
    Case("no-role-attribute", lambda i: signed(i, roles=[]), "AccessDenied", DENIED),
    Case("pair-of-two-roles", lambda i: signed(i, roles=[f"{ROLE},{OTHER_ROLE}"]), "AccessDenied", DENIED),
    # Exactly one bearer SubjectConfirmation, with NotOnOrAfter and Recipient (assertions doc)
    Case("two-subject-confirmations", lambda i: signed(i, before_signing=_second_confirmation), "InvalidIdentityToken", "exactly one"),
    Case("no-recipient", lambda i: signed(i, before_signing=_no_recipient), "InvalidIdentityToken", "Recipient"),
    # A role IAM does not know (troubleshoot_saml.md: misspelled or does not exist)
    Case("unregistered-role", lambda i: signed(i, roles=[f"{OTHER_ROLE},{PROVIDER}"]), "AccessDenied", DENIED, role=OTHER_ROLE),
    # The provider's metadata: its entityID is the only Issuer it vouches for
    Case("issuer-not-in-metadata", lambda i: signed(i, issuer="https://other-idp.example.com"), "InvalidIdentityToken", "Issuer not present in specified provider"),
    Case("signed-by-a-stranger", lambda i: signed(make_idp("stranger")), "InvalidIdentityToken", "signature invalid"),
    # Trust policy: principal, action, conditions, Deny
    Case("trusts-another-provider", signed, "AccessDenied", DENIED, trust=saml_trust(OTHER_PROVIDER)),
    Case("saml-aud-is-the-recipient", signed, "AccessDenied", DENIED, trust=saml_trust(PROVIDER, BROKER_ACS)),
    Case(
        "saml-sub-not-like",
        signed,
        "AccessDenied",
        DENIED,
        trust=policy(statement(PROVIDER, ["sts:AssumeRoleWithSAML"], {"StringLike": {"saml:sub": "emp-*"}})),
    ),
    Case(
        "saml-iss-and-sub-type",
        lambda i: signed(i, subject_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
        "AccessDenied",
        DENIED,
        trust=policy(
            statement(
                PROVIDER,
                ["sts:AssumeRoleWithSAML"],
                {"StringEquals": {"SAML:iss": IDP_ISSUER, "SAML:sub_type": "persistent"}},
            )
        ),
    ),
    Case(
        "explicit-deny-wins",
        signed,
        "AccessDenied",
        DENIED,
        trust=policy(
            statement(PROVIDER, ["sts:AssumeRoleWithSAML"]),
            {
                "Effect": "Deny",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:*",
                "Condition": {"StringEquals": {"saml:sub": "alice-0001"}},
            },
        ),
    ),
    Case("tags-without-sts-tag-session", lambda i: signed(i, attributes=tags(1)), "AccessDenied", DENIED, trust=saml_trust(PROVIDER, extra_actions=(SET_SOURCE_IDENTITY,))),
    Case("source-identity-without-sts-set-source-identity", lambda i: signed(i, source_identity="alice"), "AccessDenied", DENIED, trust=saml_trust(PROVIDER, extra_actions=(TAG_SESSION,))),
    # Session tags (id_session-tags.md)
    Case("51-tags", lambda i: signed(i, attributes=tags(51)), "ValidationError", "at most 50"),
    Case("tag-key-129", lambda i: signed(i, attributes={"PrincipalTag:" + "k" * 129: ["v"]}), "ValidationError", "tag keys"),
    Case("tag-value-257", lambda i: signed(i, attributes={"PrincipalTag:k": ["v" * 257]}), "ValidationError", "tag values"),
    Case("tag-two-values", lambda i: signed(i, attributes={"PrincipalTag:k": ["a", "b"]}), "ValidationError", "exactly one value"),
    Case("tag-keys-differ-by-case", lambda i: signed(i, attributes={"PrincipalTag:Team": ["a"], "PrincipalTag:team": ["b"]}), "ValidationError", "duplicate"),
    Case(
        "transitive-key-not-a-tag",
        lambda i: signed(i, attributes={"PrincipalTag:team": ["a"], "TransitiveTagKeys": ["project"]}),
        "ValidationError",
        "transitive",
    ),
    Case("packed-size", lambda i: signed(i, attributes=tags(50, 250)), "PackedPolicyTooLarge", "% of allotted space"),
    # SourceIdentity (troubleshoot_saml.md)
    Case("source-identity-too-short", lambda i: signed(i, source_identity="a"), "InvalidIdentityToken", "Source Identity must match"),
    Case("source-identity-space", lambda i: signed(i, source_identity="alice smith"), "InvalidIdentityToken", "Source Identity must match"),
    Case("source-identity-too-long", lambda i: signed(i, source_identity="a" * 65), "InvalidIdentityToken", "Source Identity must match"),
    Case("source-identity-aws-prefix", lambda i: signed(i, source_identity="aws:alice"), "InvalidIdentityToken", "Source Identity must match"),
    # RoleSessionName (troubleshoot_saml.md) and SessionDuration (900-43200)
    Case("no-role-session-name", lambda i: signed(i, session_name=None), "InvalidIdentityToken", "RoleSessionName is required in AuthnResponse"),
    Case("bad-role-session-name", lambda i: signed(i, session_name="a b"), "InvalidIdentityToken", "RoleSessionName in AuthnResponse must match"),
    Case("session-duration-899", lambda i: signed(i, attributes={"SessionDuration": ["899"]}), "InvalidIdentityToken", "SessionDuration"),
    Case("session-duration-43201", lambda i: signed(i, attributes={"SessionDuration": ["43201"]}), "InvalidIdentityToken", "SessionDuration"),
    Case("session-duration-not-a-number", lambda i: signed(i, attributes={"SessionDuration": ["1h"]}), "InvalidIdentityToken", "SessionDuration"),
    Case("session-duration-two-values", lambda i: signed(i, attributes={"SessionDuration": ["900", "900"]}), "InvalidIdentityToken", "exactly one"),
    # DurationSeconds (API_AssumeRoleWithSAML)
    Case("duration-over-max-session", signed, "ValidationError", "exceeds the MaxSessionDuration", params={"DurationSeconds": "43200"}, trust=saml_trust(PROVIDER)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=attrgetter("name"))
def test_refusals(case: Case, aws: Aws, idp: SigningIdp) -> None:
    if case.trust is not None:
        aws.standin.register_role(ROLE, case.trust, 3600)
    status, code, message = fault(aws.post(case.assertion(idp), case.role, **case.params))
    assert code == case.code, message
    assert case.message in message
    assert status == (403 if code == "AccessDenied" else 400)
    assert [c.outcome for c in aws.standin.calls] == [case.code]
    assert not aws.standin.issued_access_key_ids


# ---------------------------------------------------------------- what passes


def test_pair_in_either_order_and_a_trusted_recipient(aws: Aws, idp: SigningIdp) -> None:
    aws.standin.update_trust_policy(ROLE, saml_trust(PROVIDER, BROKER_ACS))
    for pair in (f"{ROLE},{PROVIDER}", f" {PROVIDER} , {ROLE} "):
        assert aws.post(signed(idp, roles=[pair], recipient=BROKER_ACS)).status_code == 200
    assert fault(aws.post(signed(idp, recipient=ACS)))[1] == "AccessDenied"


def test_tags_and_source_identity_when_trusted(aws: Aws, idp: SigningIdp) -> None:
    attributes = {
        "PrincipalTag:team": ["payments"],
        "PrincipalTag:cost-center": ["1234"],
        "TransitiveTagKeys": ["team"],
    }
    trust = policy(
        statement(PROVIDER, ["sts:AssumeRoleWithSAML", SET_SOURCE_IDENTITY]),
        statement(
            PROVIDER,
            [TAG_SESSION],
            {
                "StringEquals": {"aws:RequestTag/team": "payments"},
                "ForAllValues:StringEquals": {"sts:TransitiveTagKeys": ["team"]},
            },
        ),
    )
    aws.standin.update_trust_policy(ROLE, trust)
    response = aws.post(signed(idp, attributes=attributes, source_identity="alice"))
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{NS}}}SourceIdentity") == "alice"
    assert int(root.findtext(f".//{{{NS}}}PackedPolicySize") or 0) >= 1
    attributes["PrincipalTag:team"] = ["sales"]
    assert fault(aws.post(signed(idp, attributes=attributes)))[1] == "AccessDenied"


def test_saml_doc_and_namequalifier_keys(aws: Aws, idp: SigningIdp) -> None:
    qualifier = base64.b64encode(
        hashlib.sha1(f"{IDP_ISSUER}{ACCOUNT}/corp".encode(), usedforsecurity=False).digest()
    ).decode()
    condition = {"StringEquals": {"saml:doc": f"{ACCOUNT}/corp", "saml:namequalifier": qualifier}}
    aws.standin.update_trust_policy(
        ROLE, policy(statement(PROVIDER, ["sts:AssumeRoleWithSAML"], condition))
    )
    assert aws.post(signed(idp)).status_code == 200


def test_session_duration_attribute_shortens_the_session(aws: Aws, idp: SigningIdp) -> None:
    start = aws.now[0]
    short = aws.post(signed(idp, attributes={"SessionDuration": ["900"]}), DurationSeconds="3600")
    assert expiration(short) == (start + timedelta(seconds=900)).replace(microsecond=0)
    longer = aws.post(signed(idp, attributes={"SessionDuration": ["7200"]}))
    assert expiration(longer) == (start + timedelta(seconds=3600)).replace(microsecond=0)


def test_unregistered_roles_only_in_the_permissive_mode(idp: SigningIdp) -> None:
    standin = AwsStandIn(allow_unregistered_roles=True)
    standin.register_saml_provider("corp", [idp.cert_pem], ACCOUNT)
    with serve(standin) as url:
        assert Aws(standin, url).post(signed(idp)).status_code == 200
