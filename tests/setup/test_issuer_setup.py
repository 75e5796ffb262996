"""Issuer mode in IAM: the broker's SAML provider (moto), trust policies, and `config check`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from broker.cli import main
from broker.setup.check import check
from tests.fakes.issuer import issuer_section, signing_keys
from tests.fakes.saml_idp import Keypair

MOTO_ACCOUNT = "123456789012"  # moto's default account
PROD = "111122223333"


def write(tmp_path: Path, keys: list[Keypair], **changes: Any) -> str:
    doc: dict[str, Any] = {
        "server": {"base_url": "https://broker.example.com"},
        "identity_providers": {
            "corp": {
                "type": "saml",
                "entity_id": "https://idp.example.com",
                "certificates": [keys[0].cert_pem],
            },
        },
        "issuer": issuer_section(keys),
        "roles": {
            "admin": {
                "arn": f"arn:aws:iam::{PROD}:role/Admin",
                "session_tags": {"Department": "{department}"},
                "source_identity": "{email}",
            },
            "viewer": {"arn": f"arn:aws:iam::{PROD}:role/Viewer"},
        },
        "rules": [{"name": "all", "idp": "corp", "grant": ["admin", "viewer"]}],
    }
    doc.update(changes)
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[Keypair]:
    return signing_keys(tmp_path_factory.mktemp("keys"), "current", "next")


def policy(capsys: pytest.CaptureFixture[str], config: str, role: str) -> dict[str, Any]:
    assert main(["setup", "trust-policy", "--role", role, "--config", config, "--json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_trust_policy_names_only_the_brokers_provider(
    keys: list[Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, keys)
    admin = policy(capsys, config, "admin")
    assert admin["broker_only"] == []  # issuer mode: what the broker decides, AWS enforces
    assert admin["policy"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{PROD}:saml-provider/broker"},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
        }
    ]
    # No tags, no SourceIdentity: no session actions.
    assert policy(capsys, config, "viewer")["policy"]["Statement"][0]["Action"] == (
        "sts:AssumeRoleWithSAML"
    )


def test_trust_policy_in_govcloud(
    keys: list[Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roles = {"viewer": {"arn": f"arn:aws-us-gov:iam::{PROD}:role/Viewer"}}
    config = write(
        tmp_path,
        keys,
        aws={"partition": "aws-us-gov", "region": "us-gov-west-1"},
        roles=roles,
        rules=[{"name": "all", "grant": "viewer"}],
    )
    (statement,) = policy(capsys, config, "viewer")["policy"]["Statement"]
    assert statement["Principal"]["Federated"].startswith("arn:aws-us-gov:iam::")
    assert statement["Condition"]["StringEquals"]["SAML:aud"] == (
        "https://signin.amazonaws-us-gov.com/saml"
    )


def findings(config: str, now: datetime | None = None) -> list[tuple[str, str, str]]:
    return [f for f in check(config, offline=True, now=now).findings if f[0] != "ok"]


def test_config_check_warns_of_a_role_reachable_both_ways(
    keys: list[Keypair], tmp_path: Path
) -> None:
    roles = {
        "admin": {"arn": f"arn:aws:iam::{PROD}:role/Admin"},
        "admin-direct": {"arn": f"arn:aws:iam::{PROD}:role/Admin", "via": "idp"},
        "legacy": {"arn": f"arn:aws:iam::{PROD}:role/Legacy", "via": "idp"},
    }
    rules = [{"name": "all", "idp": "corp", "grant": ["admin", "admin-direct", "legacy"]}]
    found = findings(write(tmp_path, keys, roles=roles, rules=rules))
    about_admin = [m for lv, w, m in found if w == "roles.admin" and lv == "warning"]
    assert any("also reached via idp as roles.admin-direct" in m for m in about_admin)
    assert any("also trusts IdP 'corp'" in m for m in about_admin)
    # Nothing to warn of when only the broker's provider is in the account.
    assert not [f for f in findings(write(tmp_path, keys)) if f[1].startswith("roles.admin")]


def test_config_check_watches_the_signing_keys(keys: list[Keypair], tmp_path: Path) -> None:
    soon = datetime.now(UTC) + timedelta(days=29, hours=23)  # the test certificates: 30 days
    assert any(
        "expires" in m for lv, w, m in findings(write(tmp_path, keys), soon) if lv == "warning"
    )
    later = datetime.now(UTC) + timedelta(days=31)
    assert any(
        "expired" in m for lv, w, m in findings(write(tmp_path, keys), later) if lv == "error"
    )
    swapped = issuer_section(keys)
    swapped["signing_keys"][0]["certificate_file"] = str(keys[1].cert_file)
    errors = [m for lv, w, m in findings(write(tmp_path, keys, issuer=swapped)) if lv == "error"]
    assert any("does not belong" in m for m in errors)


@pytest.mark.peers
def test_saml_provider_issuer_registers_the_brokers_metadata(
    iam_endpoint: str, keys: list[Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, keys)
    base = [
        "setup",
        "saml-provider",
        "--issuer",
        "--config",
        config,
        "--endpoint-url",
        iam_endpoint,
    ]

    assert main([*base, "--account", MOTO_ACCOUNT, "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert [s["action"] for s in dry["steps"]] == ["create"]
    assert len(dry["metadata"]["signing_certificates"]) == 2  # both keys published

    assert main([*base, "--account", MOTO_ACCOUNT, "--apply", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["arn"] == f"arn:aws:iam::{MOTO_ACCOUNT}:saml-provider/broker"
    assert made["confirmed"] is True
    iam = boto3.client("iam", endpoint_url=iam_endpoint, region_name="us-east-1")
    stored = iam.get_saml_provider(SAMLProviderArn=made["arn"])["SAMLMetadataDocument"]
    assert "https://broker.example.com/issuer" in stored

    # Retiring the old key is one more run: the metadata changes, IAM is updated.
    retired = write(tmp_path, keys[1:])
    retire = [*base[:4], retired, *base[5:], "--apply", "--json"]
    assert main(retire) == 0
    assert [s["action"] for s in json.loads(capsys.readouterr().out)["steps"]] == [
        "update metadata"
    ]
    # Credentials for another account than the one meant: refused, nothing changed.
    assert main([*base, "--account", PROD, "--apply", "--json"]) == 1
    assert "not " + PROD in json.loads(capsys.readouterr().out)["errors"][0]


def test_saml_provider_needs_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "saml-provider", "--name", "corp"]) == 1
    assert "--issuer" in capsys.readouterr().err
    assert main(["setup", "saml-provider", "--issuer", "--name", "x"]) == 1


def test_iam_as_code_declares_the_brokers_provider(keys: list[Keypair], tmp_path: Path) -> None:
    from broker.config import load_config
    from broker.setup.desired import SamlProviderSpec, desired

    (spec,) = desired(load_config(write(tmp_path, keys)))
    (provider,) = spec.providers
    assert isinstance(provider, SamlProviderSpec)
    assert provider.arn("aws", PROD) == f"arn:aws:iam::{PROD}:saml-provider/broker"
    assert "https://broker.example.com/issuer" in provider.metadata
    assert {r.name: r.providers for r in spec.roles} == {
        "admin": ("broker",),
        "viewer": ("broker",),
    }
