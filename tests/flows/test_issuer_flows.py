"""Issuer mode end to end: an OIDC workload and a SAML person reach AWS through the broker's own
signed assertion. The AWS stand-in trusts only the certificate published at /issuer/metadata."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from broker.app import create_app
from broker.config import Config, IssuerSettings, parse_config
from broker.identity import Identity, NoProof
from broker.issuer.mint import AssertionIssuer
from broker.mapping import map_roles
from broker_demo.aws import AwsStandIn
from broker_demo.serving import serve_asgi
from tests.fakes.issuer import (
    StsRecorder,
    issuer_section,
    published_certificates,
    saml_attributes,
    signing_keys,
    xmlsec1_verifies,
)
from tests.fakes.logs import BrokerLogs, assert_nothing_leaked, capturing
from tests.fakes.saml_idp import Keypair, TestIdp
from tests.fakes.servers import serve_app
from tests.fakes.trust import register_configured_roles
from tests.peers.oidc_provider import OidcProviderPeer

pytestmark = pytest.mark.peers

PROD = "111122223333"
ADMIN = f"arn:aws:iam::{PROD}:role/Admin"
BROKER_PROVIDER = f"arn:aws:iam::{PROD}:saml-provider/broker"
BASE_URL = "http://127.0.0.1:8080"
IDP_ENTITY = "https://idp.example.test/saml"
# "login", not "email": pysaml2 renames email to its OID, as real IdPs often do.
WORKLOAD = {"team": "deploy", "department": "Platform", "login": "ci@example.com"}
PERSON = {"groups": ["admins"], "department": ["Research"], "login": ["alice@example.com"]}


def issuer_config(
    oidc_issuer: str, idp: TestIdp, sts_url: str, audit: Path, keys: list[Keypair]
) -> Config:
    return parse_config(
        {
            "server": {"base_url": BASE_URL},
            "aws": {
                "sts_endpoint": sts_url + "/",
                "federation_endpoint": sts_url + "/federation",
                "sts_max_attempts": 1,
            },
            "audit": {"path": str(audit)},
            "identity_providers": {
                "gh": {
                    "type": "oidc",
                    "issuer": oidc_issuer,
                    "audiences": ["sts.amazonaws.com"],
                    "token_types": ["JWT", "at+jwt"],
                },
                "corp": {
                    "type": "saml",
                    "entity_id": IDP_ENTITY,
                    "certificates": [idp.key.cert_pem],
                },
            },
            "issuer": issuer_section(keys),
            "roles": {
                "admin": {
                    "arn": ADMIN,
                    "max_session_seconds": 7200,
                    "session_tags": {"Department": "{department}", "Team": "ops"},
                    "transitive_tags": ["Department"],
                    "source_identity": "{login}",
                },
            },
            "rules": [
                {
                    "name": "deployers",
                    "idp": "gh",
                    "when": {"claim": "team", "equals": "deploy"},
                    "grant": "admin",
                },
                {
                    "name": "admins",
                    "idp": "corp",
                    "when": {"claim": "groups", "contains": "admins"},
                    "grant": "admin",
                },
            ],
        }
    )


@dataclass
class IssuerWorld:
    url: str
    standin: AwsStandIn
    standin_url: str
    recorder: StsRecorder
    idp: TestIdp
    oidc: OidcProviderPeer
    config: Config
    published: list[str]
    secrets: list[str] = field(default_factory=list)

    def token(self, claims: dict[str, Any]) -> str:
        token = self.oidc.mint(self.oidc.register_client(claims))
        self.secrets.append(token)
        return token

    def saml(self, attributes: dict[str, list[str]]) -> str:
        response = self.idp.b64(roles=[], attributes=attributes)  # no AWS Role attribute at all
        self.secrets.append(response)
        return response

    def credentials(self, token: str, **params: Any) -> httpx.Response:
        r = httpx.post(
            f"{self.url}/v1/credentials",
            params={"role": "admin", **params},
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )
        self.remember(r)
        return r

    def remember(self, r: httpx.Response) -> None:
        if r.status_code == 200 and "json" in r.headers.get("content-type", ""):
            creds = r.json()["Credentials"]
            self.secrets += [creds["SecretAccessKey"], creds["SessionToken"]]
        self.secrets += self.recorder.assertions

    def saml_sts_calls(self) -> list[Any]:
        return [c for c in self.standin.calls if c.action == "AssumeRoleWithSAML"]


@pytest.fixture(scope="module")
def world(
    oidc_provider: OidcProviderPeer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuerWorld]:
    tmp = tmp_path_factory.mktemp("issuer-flow")
    keys = signing_keys(tmp / "keys", "broker")
    idp = TestIdp(tmp / "idp", acs_url=BASE_URL + "/saml/acs", entity_id=IDP_ENTITY)
    standin = AwsStandIn()
    recorder = StsRecorder(standin.app)
    audit = tmp / "audit.jsonl"
    with capturing(BrokerLogs()) as logs, serve_asgi(recorder) as standin_url:
        standin.base_url = standin_url
        config = issuer_config(oidc_provider.issuer, idp, standin_url, audit, keys)
        with serve_app(create_app(config)) as url:
            metadata = httpx.get(url + "/issuer/metadata")
            assert metadata.status_code == 200
            assert metadata.headers["content-type"] == "application/samlmetadata+xml"
            published = published_certificates(metadata.content)
            # Like `aws iam create-saml-provider --saml-metadata-document file://metadata.xml`.
            standin.register_saml_provider("broker", metadata=metadata.content, account_id=PROD)
            # The roles trust the broker's provider as `broker setup trust-policy` prints.
            register_configured_roles(standin, config)
            w = IssuerWorld(
                url, standin, standin_url, recorder, idp, oidc_provider, config, published
            )
            yield w
    assert_nothing_leaked(w.secrets, logs, audit)


@pytest.fixture(autouse=True)
def _reset(world: IssuerWorld) -> None:
    world.standin.reset()
    world.recorder.assertions.clear()


def test_oidc_workload_gets_credentials_through_the_brokers_assertion(
    world: IssuerWorld, tmp_path: Path
) -> None:
    r = world.credentials(world.token(WORKLOAD))
    assert r.status_code == 200, r.text
    assert r.json()["Credentials"]["AccessKeyId"]
    (call,) = world.standin.calls
    assert (call.action, call.outcome) == ("AssumeRoleWithSAML", "ok")
    assert (call.role_arn, call.principal_arn) == (ADMIN, BROKER_PROVIDER)
    assert call.duration_seconds == 7200
    (sent,) = world.recorder.assertions
    assert sent not in r.text  # the assertion went to STS only
    assert xmlsec1_verifies(sent, world.published[0], tmp_path)
    attributes = saml_attributes(sent)
    assert attributes["PrincipalTag:Department"] == ["Platform"]
    assert attributes["PrincipalTag:Team"] == ["ops"]
    assert attributes["TransitiveTagKeys"] == ["Department"]
    assert attributes["SourceIdentity"] == ["ci@example.com"]
    assert attributes["SessionDuration"] == ["7200"]


def test_saml_cli_with_an_idp_that_signs_no_aws_attributes(world: IssuerWorld) -> None:
    r = httpx.post(
        f"{world.url}/v1/saml/credentials",
        data={"SAMLResponse": world.saml(PERSON), "role": "admin"},
        timeout=20,
    )
    world.remember(r)
    assert r.status_code == 200, r.text
    (call,) = world.saml_sts_calls()
    assert (call.principal_arn, call.outcome, call.subject) == (
        BROKER_PROVIDER,
        "ok",
        "alice@example.com",
    )
    attributes = saml_attributes(world.recorder.assertions[0])
    assert attributes["PrincipalTag:Department"] == ["Research"]
    assert attributes["SourceIdentity"] == ["alice@example.com"]


def test_browser_console_through_the_issuer(world: IssuerWorld) -> None:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=20) as client:
        r = client.post("/saml/acs", data={"SAMLResponse": world.saml(PERSON)})
        assert r.status_code == 303
        # The session outlives the IdP's five-minute assertion: issuer.session_seconds.
        lifetime = re.search(r"Max-Age=(\d+)", r.headers["set-cookie"])
        assert lifetime is not None
        assert 28000 < int(lifetime.group(1)) <= 28800
        assert r.headers["location"] == "/console?role=admin"  # one role: straight there
        r = client.get(r.headers["location"])
        assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(world.standin_url + "/federation?")
    world.secrets += parse_qs(urlsplit(location).query)["SigninToken"]
    world.remember(r)
    with httpx.Client(follow_redirects=True, timeout=20) as browser:
        console = browser.get(location)
    assert console.status_code == 200
    assert "assumed-role/Admin/" in console.text
    assert [c.principal_arn for c in world.saml_sts_calls()] == [BROKER_PROVIDER]


@pytest.mark.parametrize(
    ("claims", "attribute"),
    [
        ({**WORKLOAD, "department": "d" * 300}, "session tag 'Department'"),
        ({**WORKLOAD, "login": "ci user"}, "SourceIdentity"),
        ({"team": "deploy", "login": "ci@example.com"}, "session tag 'Department'"),
    ],
    ids=["300-character department", "illegal source identity", "missing department"],
)
def test_values_aws_would_refuse_get_a_4xx_and_no_sts_call(
    world: IssuerWorld, claims: dict[str, Any], attribute: str
) -> None:
    r = world.credentials(world.token(claims))
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["code"] == "SessionAttributeRefused"
    assert "'admin'" in problem["detail"]
    assert attribute in problem["detail"]
    assert world.standin.calls == []


def test_the_stand_in_refuses_a_tampered_or_foreign_assertion(
    world: IssuerWorld, tmp_path: Path
) -> None:
    assert world.credentials(world.token(WORKLOAD)).status_code == 200
    genuine = base64.b64decode(world.recorder.assertions[0])
    tampered = base64.b64encode(genuine.replace(b">Platform<", b">Finance<")).decode()
    stranger = signing_keys(tmp_path, "stranger")
    foreign_config = world.config.model_copy(
        update={"issuer": IssuerSettings.model_validate(issuer_section(stranger))}
    )
    claims_identity = _identity(foreign_config)
    grant = map_roles(claims_identity, foreign_config).grants[0]
    foreign = AssertionIssuer.from_config(foreign_config).proof(claims_identity, grant, 900)
    for forged in (tampered, foreign.response):
        world.secrets.append(forged)
        r = httpx.post(
            world.standin_url + "/",
            data={
                "Action": "AssumeRoleWithSAML",
                "Version": "2011-06-15",
                "RoleArn": ADMIN,
                "PrincipalArn": BROKER_PROVIDER,
                "SAMLAssertion": forged,
            },
            timeout=20,
        )
        assert r.status_code == 400
        assert "<Code>InvalidIdentityToken</Code>" in r.text


def _identity(config: Config) -> Identity:
    return Identity(
        "oidc",
        "gh",
        "https://token.example.com",
        "repo:o/a",
        WORKLOAD,
        datetime.now(UTC),
        NoProof(),
    )
