"""A broker config spanning two accounts, and the trust policies `setup trust-policy` prints for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main
from tests.fakes.pki import saml_metadata

PROD, STAGING = "111122223333", "444455556666"
GHA = "token.actions.githubusercontent.com"
K8S = "oidc.eks.us-east-1.amazonaws.com/id/ABC"


def write_config(tmp_path: Path, **overrides: Any) -> str:
    metadata = tmp_path / "corp.xml"
    metadata.write_bytes(saml_metadata("https://idp.example.com/corp"))
    doc: dict[str, Any] = {
        "server": {"base_url": "https://broker.example.com"},
        "identity_providers": {
            "corp": {"type": "saml", "metadata_file": str(metadata)},
            "github": {
                "type": "oidc",
                "issuer": f"https://{GHA}",
                "audiences": ["sts.amazonaws.com"],
            },
            "eks": {"type": "oidc", "issuer": f"https://{K8S}", "audiences": ["sts.amazonaws.com"]},
        },
        "accounts": {PROD: {"name": "Production"}, STAGING: {"name": "Staging"}},
        "roles": {
            "admin": {"arn": f"arn:aws:iam::{PROD}:role/Admin", "max_session_seconds": 28800},
            "deploy-prod": {
                "arn": f"arn:aws:iam::{PROD}:role/ci/github-deploy",
                "description": "main of org/app deploys",
            },
            "reports": {"arn": f"arn:aws:iam::{STAGING}:role/Reports", "max_session_seconds": 7200},
        },
        "rules": [
            {
                "name": "admins",
                "idp": "corp",
                "when": {"claim": "groups", "contains": "admins"},
                "grant": "admin",
            },
            {
                "name": "main",
                "idp": "github",
                "when": [
                    {"claim": "repository", "equals": "org/app"},
                    {"claim": "ref", "equals": "refs/heads/main"},
                ],
                "grant": "deploy-prod",
            },
            {
                "name": "reporting-pods",
                "idp": "eks",
                "when": {"claim": "sub", "glob": "system:serviceaccount:reporting:*"},
                "grant": "reports",
            },
        ],
    }
    doc.update(overrides)
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def trust_policies(config: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Role ARN → the document `broker setup trust-policy --json` prints for it."""
    raw = yaml.safe_load(Path(config).read_text())
    out = {}
    for name, role in raw["roles"].items():
        assert main(["setup", "trust-policy", "--config", config, "--role", name, "--json"]) == 0
        out[role["arn"]] = json.loads(capsys.readouterr().out)["policy"]
    return out
