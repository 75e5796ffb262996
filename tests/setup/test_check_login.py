"""`broker config check` for an OIDC IdP with `login: true`: the client's secret or key read as
at startup (offline), and the IdP's discovery document against the flow the broker uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.config import OidcIdp
from broker.setup.check import check
from broker.setup.check_login import check_login
from tests.peers.oidc_provider import OidcProviderPeer

BASE_URL = "https://aws.example.com"


def write(tmp_path: Path, idp: dict[str, Any]) -> str:
    path = tmp_path / "broker.yaml"
    config = {
        "server": {"base_url": BASE_URL},
        "identity_providers": {"corp": {"type": "oidc", "login": True, **idp}},
        "roles": {"people": {"arn": "arn:aws:iam::111122223333:role/people"}},
        "rules": [{"name": "r", "idp": "corp", "grant": "people"}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def findings(report: Any, level: str) -> list[str]:
    return [f"{where}: {msg}" for lv, where, msg in report.findings if lv == level]


@pytest.mark.unit
def test_offline_reads_the_secret_and_names_the_redirect_uri(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    idp = {
        "issuer": "https://login.example.com",
        "client_id": "b",
        "client_secret_file": str(secret),
    }
    report = check(write(tmp_path, idp), offline=True)
    assert report.passed, report.findings
    assert any(f"{BASE_URL}/oidc/callback" in m for m in findings(report, "ok"))
    assert not any("s3cret" in m for _, _, m in report.findings)


@pytest.mark.unit
def test_offline_missing_secret_is_an_error(tmp_path: Path) -> None:
    idp = {"issuer": "https://login.example.com", "client_id": "b", "client_secret_file": "/nope"}
    report = check(write(tmp_path, idp), offline=True)
    assert not report.passed
    assert any("client_secret_file: cannot read" in e for e in findings(report, "error"))


class Collect:
    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def error(self, where: str, message: str) -> None:
        self.found.append(("error", message))

    def warning(self, where: str, message: str) -> None:
        self.found.append(("warning", message))

    def ok(self, where: str, message: str) -> None:
        self.found.append(("ok", message))


DISCOVERY = {
    "authorization_endpoint": "https://login.example.com/auth",
    "token_endpoint": "https://login.example.com/token",
    "response_types_supported": ["code"],
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    "scopes_supported": ["openid", "email", "profile"],
}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "level", "says"),
    [
        ({}, "ok", "register the redirect URI"),
        ({"code_challenge_methods_supported": ["plain"]}, "error", "PKCE S256"),
        ({"response_types_supported": ["id_token"]}, "error", "the code flow"),
        ({"token_endpoint": "http://login.example.com/token"}, "error", "token_endpoint"),
        ({"authorization_endpoint": None}, "error", "authorization_endpoint"),
        (
            {"token_endpoint_auth_methods_supported": ["private_key_jwt"]},
            "warning",
            "client_secret_basic",
        ),
        ({"scopes_supported": ["openid"]}, "warning", "['email', 'profile']"),
    ],
)
def test_discovery_against_the_flow(
    tmp_path: Path, change: dict[str, Any], level: str, says: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    idp = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": "https://login.example.com",
            "login": True,
            "client_id": "b",
            "client_secret_file": str(secret),
        }
    )
    discovery = {k: v for k, v in {**DISCOVERY, **change}.items() if v is not None}
    report = Collect()
    check_login("corp", idp, BASE_URL, report, discovery)
    assert any(lv == level and says in m for lv, m in report.found), report.found


@pytest.mark.peers
def test_oidc_providers_discovery_passes(oidc_provider: OidcProviderPeer, tmp_path: Path) -> None:
    """A real IdP's discovery document (`broker config check` itself fetches only https; the
    peer is plain http on loopback)."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    idp = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": oidc_provider.issuer,
            "login": True,
            "client_id": "b",
            "client_secret_file": str(secret),
        }
    )
    report = Collect()
    check_login("corp", idp, BASE_URL, report, oidc_provider.discovery)
    assert [lv for lv, _ in report.found] == ["ok"], report.found
