"""`broker explain` shows what an issuer grant would carry to AWS, or why it would be refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main

CONFIG = {
    "identity_providers": {
        "gh": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["a"]}
    },
    "issuer": {"signing_keys": [{"key_file": "/k", "certificate_file": "/c"}]},
    "roles": {
        "prod-admin": {
            "arn": "arn:aws:iam::111122223333:role/Admin",
            "max_session_seconds": 43200,
            "session_tags": {"Department": "{department}", "CostCenter": "{cost_center}"},
            "transitive_tags": ["Department"],
            "source_identity": "{email}",
        },
        "legacy": {"arn": "arn:aws:iam::111122223333:role/Legacy", "via": "idp"},
    },
    "rules": [{"name": "all", "grant": ["prod-admin", "legacy"]}],
}


def explain(tmp_path: Path, claims: dict[str, Any], *extra: str) -> tuple[int, str]:
    config, claims_file = tmp_path / "broker.yaml", tmp_path / "claims.json"
    config.write_text(yaml.safe_dump(CONFIG))
    claims_file.write_text(json.dumps(claims))
    args = ["explain", "--config", str(config), "--idp", "gh", "--claims", str(claims_file)]
    return main([*args, *extra]), ""


def test_human_output_lists_the_signed_attributes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims = {"sub": "u1", "department": "Eng", "cost_center": 42, "email": "alice@example.com"}
    code, _ = explain(tmp_path, claims)
    out = capsys.readouterr().out
    assert code == 0
    assert "via issuer (arn:aws:iam::111122223333:saml-provider/broker)" in out
    assert "SessionDuration 43200" in out
    assert "PrincipalTag:Department = Eng" in out
    assert "PrincipalTag:CostCenter = 42" in out
    assert "TransitiveTagKeys: Department" in out
    assert "SourceIdentity = alice@example.com" in out
    assert "via idp: the IdP's own proof goes to STS" in out


def test_json_output_and_a_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claims = {"sub": "u1", "department": "d" * 300, "cost_center": "x", "email": "a@b.c"}
    code, _ = explain(tmp_path, claims, "--json")
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    admin = next(g for g in doc["granted"] if g["name"] == "prod-admin")
    assert admin["via"] == "issuer"
    assert "session tag 'Department'" in admin["refused"]
    assert next(g for g in doc["granted"] if g["name"] == "legacy")["via"] == "idp"
