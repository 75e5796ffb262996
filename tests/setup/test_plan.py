"""`broker setup plan` against moto's IAM in server mode: in sync (exit 0), drift (exit 2), as a readable diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from broker.cli import main
from tests.fakes.setup_config import GHA, PROD, trust_policies, write_config

pytestmark = pytest.mark.peers


def iam(endpoint: str) -> Any:
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")


def plan(
    capsys: pytest.CaptureFixture[str], config: str, endpoint: str, *argv: str
) -> tuple[int, str]:
    code = main(
        ["setup", "plan", "--config", config, "--account", PROD, "--endpoint-url", endpoint, *argv]
    )
    return code, capsys.readouterr().out


def build(endpoint: str, tmp_path: Path, expected: dict[str, Any]) -> None:
    """What an operator's own tooling would have created for the production account."""
    client = iam(endpoint)
    client.create_saml_provider(
        Name="corp", SAMLMetadataDocument=(tmp_path / "corp.xml").read_text()
    )
    client.create_open_id_connect_provider(Url=f"https://{GHA}", ClientIDList=["sts.amazonaws.com"])
    for name, path, seconds in [("Admin", "/", 28800), ("github-deploy", "/ci/", 3600)]:
        arn = f"arn:aws:iam::{PROD}:role{path}{name}"
        # Statement order and one-element lists differ from the export: still the same policy.
        document = dict(expected[arn])
        document["Statement"] = list(reversed(document["Statement"]))
        client.create_role(
            RoleName=name,
            Path=path,
            MaxSessionDuration=seconds,
            AssumeRolePolicyDocument=json.dumps(_listify(document)),
        )


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, str) and value != "2012-10-17":
        return [value]
    return value


def test_empty_account_lists_everything_missing(
    iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = plan(capsys, write_config(tmp_path), iam_endpoint)
    assert code == 2
    assert "+ saml-provider corp: missing" in out
    assert f"+ oidc-provider https://{GHA} (github): missing" in out
    assert f"+ role admin (arn:aws:iam::{PROD}:role/Admin): missing" in out
    assert out.rstrip().endswith("plan: 4 differences")


def test_in_sync_exits_zero(
    iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    build(iam_endpoint, tmp_path, trust_policies(config, capsys))
    code, out = plan(capsys, config, iam_endpoint)
    assert code == 0, out
    assert out.rstrip().endswith("plan: in sync")


def test_drift_is_shown_and_exits_two(
    iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    expected = trust_policies(config, capsys)
    build(iam_endpoint, tmp_path, expected)
    client = iam(iam_endpoint)
    client.update_role(RoleName="Admin", MaxSessionDuration=43200)
    wider = json.loads(json.dumps(expected[f"arn:aws:iam::{PROD}:role/ci/github-deploy"]))
    wider["Statement"][0]["Condition"]["StringLike"][f"{GHA}:sub"] = "repo:org/*"
    client.update_assume_role_policy(RoleName="github-deploy", PolicyDocument=json.dumps(wider))
    [provider] = client.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    client.add_client_id_to_open_id_connect_provider(
        OpenIDConnectProviderArn=provider["Arn"], ClientID="other-audience"
    )

    code, out = plan(capsys, config, iam_endpoint)
    assert code == 2
    assert "~ role admin" in out
    assert "MaxSessionDuration 43200 → 28800" in out
    assert "~ role deploy-prod" in out
    assert "trust policy differs:" in out
    changed = [line.split() for line in out.splitlines() if line.lstrip()[:1] in "+-"]
    assert ["-", '"repo:org/*"'] in changed
    assert ["+", '"repo:org/app:environment:*",'] in changed
    assert "- client ID other-audience" in out
    assert out.rstrip().endswith("plan: 3 differences")

    code, out = plan(capsys, config, iam_endpoint, "--json")
    doc = json.loads(out)
    assert (code, doc["in_sync"], len(doc["differences"])) == (2, False, 3)


def test_url_encoded_policies_compare_by_meaning() -> None:
    from broker.setup.plan import normalised

    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "a"}]}
    assert normalised(quote(json.dumps(policy))) == normalised(_listify(policy))
