"""`broker config check`: the file, static rule checks, and live discovery, JWKS and metadata."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from broker.cli import main
from broker.setup.check import check
from tests.fakes.pki import HttpsServer, Pki, issue, saml_metadata

ARN = "arn:aws:iam::111122223333:role/"


def write(tmp_path: Path, config: dict[str, Any] | str) -> str:
    path = tmp_path / "broker.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return str(path)


def base(**idps: Any) -> dict[str, Any]:
    return {
        "identity_providers": idps
        or {"gha": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["sts"]}},
        "roles": {"deploy": {"arn": ARN + "deploy"}},
        "rules": [{"name": "r", "when": {"claim": "sub", "equals": "x"}, "grant": "deploy"}],
    }


def findings(report: Any, level: str) -> list[str]:
    return [f"{where}: {msg}" for lv, where, msg in report.findings if lv == level]


def test_offline_valid_config_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["config", "check", "--config", write(tmp_path, base()), "--offline", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["findings"][0]["level"] == "ok"


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    text = """
identity_providers:
  gha: {type: oidc, issuer: "https://a.example.com", audiences: [x]}
  gha: {type: oidc, issuer: "https://b.example.com", audiences: [x]}
"""
    report = check(write(tmp_path, text), offline=True)
    assert not report.passed
    assert any("line 4: duplicate key 'gha'" in e for e in findings(report, "error"))


INVALID = [
    (
        "partition",
        "roles",
        {"gov": {"arn": "arn:aws-us-gov:iam::111122223333:role/gov"}},
        "partition aws-us-gov, but aws.partition is aws",
    ),
    ("unknown-role", "rules", [{"name": "x", "grant": "nope"}], "no role named 'nope' in roles"),
    ("duplicate-rule", "rules", [{"name": "r", "grant": "deploy"}], "duplicate rule name"),
]


@pytest.mark.parametrize(
    ("name", "section", "extra", "message"), INVALID, ids=[c[0] for c in INVALID]
)
def test_invalid_configs_fail(
    name: str,
    section: str,
    extra: Any,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = base()
    if isinstance(extra, dict):
        config[section].update(extra)
    else:
        config[section] += extra
    assert main(["config", "check", "--config", write(tmp_path, config), "--offline"]) == 1
    out = capsys.readouterr().out
    assert message in out
    assert "FAILED" in out


NEVER = [
    ("empty-in", {"claim": "sub", "in": []}),
    ("wrong-iss", {"claim": "iss", "equals": "https://other.example.com"}),
    ("two-subs", [{"claim": "sub", "equals": "a"}, {"claim": "sub", "equals": "b"}]),
    ("absent-and-tested", [{"claim": "email", "exists": False}, {"claim": "email", "glob": "*@x"}]),
    ("any-of-nevers", {"any": [{"claim": "sub", "in": []}, {"claim": "iss", "equals": "nope"}]}),
]


@pytest.mark.parametrize(("name", "when"), NEVER, ids=[n[0] for n in NEVER])
def test_rules_that_can_never_match(name: str, when: Any, tmp_path: Path) -> None:
    config = base()
    config["rules"].append({"name": "never", "when": when, "grant": "deploy"})
    report = check(write(tmp_path, config), offline=True)
    assert findings(report, "error") == [
        "rules[1] (never): can never match: its `when` contradicts itself or the IdP"
    ]


def test_static_findings(tmp_path: Path) -> None:
    config = base(
        a={"type": "oidc", "issuer": "https://same.example.com", "audiences": ["sts"]},
        b={"type": "oidc", "issuer": "https://same.example.com", "audiences": ["sts"]},
    )
    config["roles"]["alias"] = {"arn": ARN + "deploy"}
    config["rules"] += [
        {"name": "aud", "when": {"claim": "aud", "equals": "other"}, "grant": "deploy"},
        {
            "name": "cn",
            "when": {"claim": "g", "regex": "(?P<r>.+)"},
            "grant": {"arn": "arn:aws-cn:iam::111122223333:role/{r}"},
        },
    ]
    report = check(write(tmp_path, config), offline=True)
    assert findings(report, "error") == [
        "identity_providers.b: same issuer as a: tokens are ambiguous",
        "rules[2] (cn): template 'arn:aws-cn:iam::111122223333:role/{r}' is not in partition aws (aws.partition)",
    ]
    warnings = findings(report, "warning")
    assert "roles.deploy: same ARN as roles.alias" in warnings  # safe_dump sorts keys
    assert any("rules[1] (aud): tests aud for ['other']" in w for w in warnings)


def jwk_with_x5c(days: int) -> dict[str, Any]:
    cert = issue("jwks signer", ca=False, days=days).cert
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": "k1",
        "use": "sig",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }


def oidc_config(url: str, **extra: Any) -> dict[str, Any]:
    return base(idp={"type": "oidc", "issuer": url, "audiences": ["sts"], **extra})


@pytest.mark.peers
def test_online_oidc_ok_and_expiring_key(issuer: HttpsServer, pki: Pki, tmp_path: Path) -> None:
    issuer.json("/jwks", {"keys": [jwk_with_x5c(days=10)]})
    report = check(
        write(tmp_path, oidc_config(issuer.url(), algorithms=["ES256"])),
        offline=False,
        ca_file=pki.root_file,
    )
    assert report.passed, report.findings
    assert any(
        "JWKS key k1 x5c[0] CN=jwks signer expires" in w for w in findings(report, "warning")
    )
    assert any("algorithms usable: ES256" in o for o in findings(report, "ok"))


@pytest.mark.peers
def test_online_oidc_problems(issuer: HttpsServer, pki: Pki, tmp_path: Path) -> None:
    issuer.json(
        "/.well-known/openid-configuration",
        {"issuer": issuer.url("/"), "jwks_uri": issuer.url("/jwks")},
    )
    issuer.json("/jwks", {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k"}]})
    report = check(
        write(tmp_path, oidc_config(issuer.url(), algorithms=["RS256"])),
        offline=False,
        ca_file=pki.root_file,
    )
    errors = findings(report, "error")
    assert any(
        "discovery names issuer" in e and "every token would be refused" in e for e in errors
    )
    assert any("suits algorithms ['RS256']" in e for e in errors)


def test_online_oidc_unreachable_is_an_error_offline_skips_it(pki: Pki, tmp_path: Path) -> None:
    path = write(tmp_path, oidc_config("https://localhost:9"))
    report = check(path, offline=False, ca_file=pki.root_file, timeout=1)
    assert any("openid-configuration" in e for e in findings(report, "error"))
    assert check(path, offline=True).passed


@pytest.mark.peers
def test_saml_metadata_file_and_url(pki: Pki, tmp_path: Path) -> None:
    expired = tmp_path / "expired.xml"
    expired.write_bytes(saml_metadata(days=-3))
    with HttpsServer(pki.server_context()) as srv:
        srv.routes["/metadata"] = (200, {"Content-Type": "application/xml"}, saml_metadata(days=20))
        config = base(
            old={"type": "saml", "metadata_file": str(expired)},
            remote={"type": "saml", "metadata_url": srv.url("/metadata")},
        )
        path = write(tmp_path, config)
        online = check(path, offline=False, ca_file=pki.root_file)
        offline = check(path, offline=True)
    assert any(
        e.startswith("identity_providers.old: metadata: signing certificate") and "expired" in e
        for e in findings(online, "error")
    )
    assert any(
        w.startswith("identity_providers.remote: metadata: signing certificate")
        for w in findings(online, "warning")
    )
    # Offline still reads the local file, but fetches nothing.
    assert findings(offline, "error") == findings(online, "error")
    assert not any(w.startswith("identity_providers.remote") for w in findings(offline, "warning"))


def test_inline_saml_certificates(tmp_path: Path) -> None:
    pem = issue("old idp", ca=False, days=-1).pem().decode()
    config = base(
        corp={
            "type": "saml",
            "entity_id": "https://idp",
            "sso_url": "https://idp/sso",
            "certificates": [pem, "bm90IGEgY2VydA=="],
        }
    )
    report = check(write(tmp_path, config), offline=True)
    first, second = findings(report, "error")
    assert first.startswith(
        "identity_providers.corp.certificates[0]: certificate CN=old idp expired "
    )
    assert (
        second == "identity_providers.corp.certificates[1]: not a PEM or base64 X.509 certificate"
    )


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(tmp_path / "nope.yaml"), "--offline"]) == 1
    assert "cannot read" in capsys.readouterr().out
