"""One SAML world: a broker (uvicorn) with one pysaml2 IdP and the AWS stand-in, logs captured."""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from broker.app import create_app
from broker.clock import SYSTEM_CLOCK, Clock
from broker.config import Config, parse_config
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.logs import BrokerLogs, assert_nothing_leaked, capturing, read_audit
from tests.fakes.saml_idp import TestIdp
from tests.fakes.servers import serve_app
from tests.fakes.trust import register_configured_roles

PROD, ANALYTICS = "111122223333", "444455556666"
DEPLOYER = f"arn:aws:iam::{PROD}:role/deployer"
ADMIN = f"arn:aws:iam::{PROD}:role/admin"
READER = f"arn:aws:iam::{ANALYTICS}:role/reader"
AUDITOR = f"arn:aws:iam::{ANALYTICS}:role/auditor"  # granted by a rule, never signed
BASE_URL = "http://127.0.0.1:8080"
IDP_ENTITY = "https://idp.example.test/saml"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
REQUEST_ID = re.compile(rb'ID="([^"]+)"')


def _with_issuer(data: dict[str, Any], issuer: dict[str, Any] | None) -> dict[str, Any]:
    """Issuer mode: the broker signs for every role, which rules grant (an IdP-signed pair
    never reaches a role reached via the broker's own provider)."""
    if issuer is not None:
        data["issuer"] = issuer
        data["rules"].append(
            {"name": "people", "idp": "corp", "grant": ["deployer", "admin", "reader"]}
        )
    return data


def world_config(
    idp: TestIdp,
    standin_url: str,
    audit: Path,
    sso_url: str | None,
    *,
    aws: dict[str, Any] | None = None,
    issuer: dict[str, Any] | None = None,
    **server: Any,
) -> Config:
    return parse_config(
        _with_issuer(
            {
                "server": {"base_url": BASE_URL, **server},
                "aws": {
                    "sts_endpoint": standin_url + "/",
                    "federation_endpoint": standin_url + "/federation",
                    "sts_max_attempts": 1,
                    **(aws or {}),
                },
                "audit": {"path": str(audit)},
                "identity_providers": {
                    "corp": {
                        "type": "saml",
                        "entity_id": IDP_ENTITY,
                        "sso_url": sso_url,
                        "certificates": [idp.key.cert_pem],
                    }
                },
                "accounts": {PROD: {"name": "Production"}, ANALYTICS: {"name": "Analytics"}},
                "roles": {
                    "deployer": {"arn": DEPLOYER, "max_session_seconds": 7200},
                    "admin": {"arn": ADMIN, "description": "Full access"},
                    "reader": {"arn": READER, "max_session_seconds": 43200},
                    "auditor": {"arn": AUDITOR},
                },
                "rules": [
                    {"name": "auditors", "idp": "corp", "grant": ["auditor"]},
                    {
                        "name": "no-contractors",
                        "idp": "corp",
                        "when": {"claim": "groups", "contains": "contractors"},
                        "deny": ["*"],
                    },
                    {
                        "name": "no-admin-for-interns",
                        "idp": "corp",
                        "when": {"claim": "groups", "contains": "interns"},
                        "deny": ["admin"],
                    },
                ],
            },
            issuer,
        )
    )


@dataclass
class SamlWorld:
    url: str
    idp: TestIdp
    standin: AwsStandIn
    standin_url: str
    logs: BrokerLogs
    audit_path: Path
    pairs: list[str]
    app: FastAPI
    secrets: list[str] = field(default_factory=list)

    def response(self, **kwargs: Any) -> str:
        kwargs.setdefault("roles", self.pairs)
        b64 = self.idp.b64(**kwargs)
        self.secrets.append(b64)
        return b64

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=20)

    def sign_in(self, client: httpx.Client, **kwargs: Any) -> httpx.Response:
        return client.post("/saml/acs", data={"SAMLResponse": self.response(**kwargs)})

    def start_login(
        self, client: httpx.Client, next_path: str = "/", headers: dict[str, str] | None = None
    ) -> str:
        """GET /saml/login as this browser; the ID of the AuthnRequest it sent to the IdP."""
        r = client.get("/saml/login", params={"next": next_path}, headers=headers)
        assert r.status_code == 303, r.text
        query = parse_qs(urlsplit(r.headers["location"]).query)
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        found = REQUEST_ID.search(xml)
        assert found is not None
        return found.group(1).decode()

    def csrf(self, client: httpx.Client) -> str:
        page = client.get("/", headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found is not None
        return found.group(1)

    def sts_calls(self) -> list[Any]:
        return [c for c in self.standin.calls if c.action == "AssumeRoleWithSAML"]

    def audit(self) -> list[dict[str, Any]]:
        return read_audit(self.audit_path)

    def follow_to_console(self, location: str) -> httpx.Response:
        """Play the browser: the federation login URL, then the stand-in's console."""
        self.secrets.extend(parse_qs(urlsplit(location).query).get("SigninToken", []))
        with httpx.Client(follow_redirects=True, timeout=20) as browser:
            return browser.get(location)


def register_idp(standin: AwsStandIn, idp: TestIdp, *accounts: str) -> list[str]:
    """The IdP as an IAM SAML provider named "corp" in each account, from its metadata."""
    metadata = idp.metadata()
    return [
        standin.register_saml_provider("corp", account_id=a, metadata=metadata) for a in accounts
    ]


@contextmanager
def saml_world(
    tmp: Path,
    *,
    sso_url: str | None = IDP_ENTITY + "/sso",
    tls: tuple[Path, Path] | None = None,
    standin: AwsStandIn | None = None,
    aws: dict[str, Any] | None = None,
    issuer: dict[str, Any] | None = None,
    port: int = 0,
    clock: Clock = SYSTEM_CLOCK,
    **server: Any,
) -> Iterator[SamlWorld]:
    """A broker (uvicorn) with one SAML IdP (pysaml2) and the AWS stand-in; logs captured at
    DEBUG and checked on the way out: no assertion, credential or sign-in token in any line.
    `standin` replaces the default AWS stand-in (e.g. one with a short redemption window);
    `port` serves the broker there (with a `base_url` naming it, a page's scripts send the
    Origin the broker expects); `clock` is the broker's (a test may move it ahead)."""
    base_url = server.get("base_url", BASE_URL)
    idp = TestIdp(tmp / "idp", acs_url=base_url + "/saml/acs", entity_id=IDP_ENTITY)
    standin = standin or AwsStandIn()
    audit_path = tmp / "audit.jsonl"
    with capturing(BrokerLogs()) as logs, serve(standin) as standin_url:
        prod, analytics = register_idp(standin, idp, PROD, ANALYTICS)
        pairs = [f"{DEPLOYER},{prod}", f"{ADMIN},{prod}", f"{READER},{analytics}"]
        config = world_config(
            idp, standin_url, audit_path, sso_url, aws=aws, issuer=issuer, **server
        )
        # What an operator sets up in IAM: the roles trust "corp" for assertions sent to the
        # broker's ACS URL (SAML:aud), as `broker setup trust-policy --idp corp` prints; in
        # issuer mode, the broker's own provider, registered from its metadata.
        if issuer is None:
            register_configured_roles(standin, config, idp="corp")
        app = create_app(config, clock=clock)
        with serve_app(app, tls=tls, port=port) as url:
            if issuer is not None:
                metadata = httpx.get(url + "/issuer/metadata").content
                for account in (PROD, ANALYTICS):
                    standin.register_saml_provider("broker", account_id=account, metadata=metadata)
                register_configured_roles(standin, config)
            world = SamlWorld(url, idp, standin, standin_url, logs, audit_path, pairs, app)
            yield world
    assert_nothing_leaked(world.secrets, logs, audit_path)
