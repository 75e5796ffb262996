"""One world for people's OIDC sign-in: a broker whose login IdP is oidc-provider (authorization
code + PKCE), the AWS stand-in trusting it and the broker's own issuer, logs captured."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from broker.app import create_app
from broker.config import Config, OidcIdp, parse_config
from broker.oidc.pending import PendingSignIns
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.issuer import issuer_section, signing_keys
from tests.fakes.logs import BrokerLogs, assert_nothing_leaked, capturing, read_audit
from tests.fakes.servers import free_port, serve_app
from tests.fakes.trust import register_configured_roles
from tests.peers.oidc_provider import OidcProviderPeer

PROD, ANALYTICS = "111122223333", "444455556666"
DEPLOYER = f"arn:aws:iam::{PROD}:role/deployer"  # pass-through: the ID token goes to STS
ADMIN = f"arn:aws:iam::{ANALYTICS}:role/admin"  # issuer mode: the broker's own assertion
PROGRAMS_AUDIENCE = "sts.amazonaws.com"
IDP = "corp"
#: The broker's session secret, known here so tests can read and make pending sign-ins.
SESSION_SECRET = b"oidc-login-world-session-secret-0123456789"
CSRF_FIELD = 'name="csrf" value="'


def _private_key_jwt(directory: Path) -> tuple[Path, dict[str, Any]]:
    """A P-256 key for RFC 7523 client authentication: its PEM file, and its public JWK."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "client-key.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="broker-client-1", alg="ES256", use="sig")
    return path, jwk


def login_config(
    base_url: str,
    issuer: str,
    sts_url: str,
    audit: Path,
    idp: dict[str, Any],
    tmp: Path,
    aws: dict[str, Any] | None = None,
) -> Config:
    return parse_config(
        {
            "server": {"base_url": base_url, "session_secret": SESSION_SECRET.decode()},
            "aws": {
                "sts_endpoint": sts_url + "/",
                "federation_endpoint": sts_url + "/federation",
                "sts_max_attempts": 1,
                **(aws or {}),
            },
            "audit": {"path": str(audit)},
            "issuer": issuer_section(signing_keys(tmp / "issuer", "signing")),
            "identity_providers": {
                IDP: {
                    "type": "oidc",
                    "issuer": issuer,
                    # Programs' tokens too: an ID token of the broker's client is not one.
                    "audiences": [PROGRAMS_AUDIENCE],
                    "jwks_min_refresh_seconds": 1,
                    "token_types": ["JWT", "at+jwt"],
                    "login": True,
                    "label": "Test IdP (OIDC)",
                    **idp,
                }
            },
            "accounts": {PROD: {"name": "Production"}, ANALYTICS: {"name": "Analytics"}},
            "roles": {
                "deployer": {"arn": DEPLOYER, "via": "idp"},
                "admin": {"arn": ADMIN, "via": "issuer"},
            },
            "rules": [
                {
                    "name": "aws-users",
                    "idp": IDP,
                    "when": {"claim": "groups", "contains": "aws-users"},
                    "grant": ["deployer", "admin"],
                },
            ],
        }
    )


@dataclass
class LoginWorld:
    url: str
    provider: OidcProviderPeer
    standin: AwsStandIn
    logs: BrokerLogs
    audit_path: Path
    client_id: str
    app: Any
    secrets: list[str] = field(default_factory=list)
    pending: PendingSignIns = field(
        default_factory=lambda: PendingSignIns([SESSION_SECRET], secure=False)
    )

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=20)

    def start(self, browser: httpx.Client, next_path: str = "/") -> str:
        """GET /oidc/login as this browser: the authorization URL it is sent to."""
        r = browser.get("/oidc/login", params={"idp": IDP, "next": next_path})
        assert r.status_code == 303, r.text
        return str(r.headers["location"])

    def at_idp(self, authorization_url: str, username: str, *, deny: bool = False) -> str:
        """The person signs in at the IdP; the callback URL the IdP sends them to (whose
        code and state are secrets that must never reach a log line)."""
        callback = self.provider.sign_in(authorization_url, username, deny=deny)
        query = parse_qs(urlsplit(callback).query)
        self.secrets += query.get("code", []) + query.get("state", [])
        return callback

    def sts_calls(self) -> list[Any]:
        """The broker's calls (the stand-in's console also calls GetCallerIdentity)."""
        return [c for c in self.standin.calls if c.action.startswith("AssumeRoleWith")]

    def saw(self, url: str) -> None:
        """A URL the browser went to: a callback's code and state are secrets."""
        if "/oidc/callback?" in url:
            query = parse_qs(urlsplit(url).query)
            self.secrets += query.get("code", []) + query.get("state", [])

    def audit(self) -> list[dict[str, Any]]:
        return read_audit(self.audit_path)

    def csrf(self, browser: httpx.Client) -> str:
        page = browser.get("/", headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        start = page.text.index(CSRF_FIELD) + len(CSRF_FIELD)
        return page.text[start : page.text.index('"', start)]


@contextmanager
def login_world(
    tmp: Path,
    provider: OidcProviderPeer,
    *,
    alg: str = "RS256",
    private_key_jwt: bool = False,
    aws: dict[str, Any] | None = None,
) -> Iterator[LoginWorld]:
    """The broker at a port chosen first (the IdP registers its redirect URI), its client
    registered at oidc-provider with ID tokens signed `alg`, authenticating with a client
    secret or `private_key_jwt`; the stand-in trusts the IdP for the client ID (pass-through)
    and the broker's own provider (issuer mode)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    idp: dict[str, Any]
    if private_key_jwt:
        key_file, jwk = _private_key_jwt(tmp)
        client_id, _ = provider.register_login_client(
            base_url + "/oidc/callback", alg=alg, public_jwk=jwk
        )
        idp = {
            "client_id": client_id,
            "private_key_jwt": {"key_file": str(key_file), "kid": jwk["kid"], "alg": "ES256"},
        }
        # A line of the private key's PEM body: it must never be logged either.
        secrets: list[str] = [key_file.read_text().splitlines()[2]]
    else:
        client_id, secret = provider.register_login_client(base_url + "/oidc/callback", alg=alg)
        assert secret is not None
        secret_file = tmp / "client-secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        idp = {"client_id": client_id, "client_secret_file": str(secret_file)}
        secrets = [secret]
    standin = AwsStandIn()
    audit_path = tmp / "audit.jsonl"
    with capturing(BrokerLogs()) as logs, serve(standin) as standin_url:
        config = login_config(base_url, provider.issuer, standin_url, audit_path, idp, tmp, aws)
        oidc = config.identity_providers[IDP]
        assert isinstance(oidc, OidcIdp)
        # What `broker setup oidc-provider` registers: the IdP, with the programs' audience
        # and the broker's client ID (the ID tokens' aud) as client IDs.
        standin.register_oidc_provider(provider.issuer, oidc.sts_audiences(), account_id=PROD)
        app = create_app(config)
        with serve_app(app, port=port) as url:
            metadata = httpx.get(url + "/issuer/metadata").content
            standin.register_saml_provider("broker", account_id=ANALYTICS, metadata=metadata)
            register_configured_roles(standin, config)
            world = LoginWorld(url, provider, standin, logs, audit_path, client_id, app, secrets)
            yield world
    assert_nothing_leaked(world.secrets, logs, audit_path)
