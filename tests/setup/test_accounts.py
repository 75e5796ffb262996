"""`broker setup accounts` against moto's Organizations in server mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from broker.cli import main
from broker.config import load_config

pytestmark = pytest.mark.peers

# moto's ListAccounts page, when the caller sets no MaxResults (moto/organizations/utils.py,
# PAGINATION_MODEL["list_accounts"]["limit_default"]); AWS's own is at most 20.
MOTO_PAGE = 100
MANAGEMENT = "123456789012"  # moto's default account, whose organization the fixture creates


def org(endpoint: str) -> Any:
    return boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1")


def create(endpoint: str, *names: str) -> list[str]:
    client = org(endpoint)
    return [
        client.create_account(AccountName=n, Email=f"{n.replace(' ', '-')}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
        for n in names
    ]


def write_config(tmp_path: Path, role_accounts: list[str], **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "identity_providers": {
            "gha": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["sts"]}
        },
        "roles": {
            f"role{i}": {"arn": f"arn:aws:iam::{a}:role/r"} for i, a in enumerate(role_accounts)
        },
        "rules": [
            {
                "name": "r",
                "when": {"claim": "sub", "equals": "x"},
                "grant": [f"role{i}" for i in range(len(role_accounts))],
            }
        ],
        **extra,
    }
    path = tmp_path / "broker.yaml"
    path.write_text("# the operator's own comments\n" + yaml.safe_dump(doc))
    return path


def run(
    capsys: pytest.CaptureFixture[str], endpoint: str, config: Path, *argv: str
) -> tuple[int, dict[str, Any], str]:
    code = main(
        ["setup", "accounts", "--config", str(config), "--endpoint-url", endpoint, *argv, "--json"]
    )
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def rows(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {r["account"]: (r["action"], r["name"]) for r in doc["accounts"]}


def test_every_page_is_read(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = create(org_endpoint, *(f"team {i:03}" for i in range(MOTO_PAGE + 5)))
    first = org(org_endpoint).list_accounts()
    assert len(first["Accounts"]) == MOTO_PAGE  # a full page,
    assert first.get("NextToken")  # and more after it
    config = write_config(tmp_path, made[:1])

    code, doc, _ = run(capsys, org_endpoint, config, "--all")

    assert code == 0
    assert doc["listed"] == len(made) + 1  # and the management account
    assert rows(doc) == {MANAGEMENT: ("add", "master")} | {
        a: ("add", f"team {i:03}") for i, a in enumerate(made)
    }
    assert (doc["applied"], doc["changes"]) == (False, len(made) + 1)
    assert not (tmp_path / "accounts.yaml").exists()  # a dry run writes nothing


def test_plan_names_only_what_the_config_references(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod, staging, _unused = create(org_endpoint, "Production", "Staging", "Sandbox")
    config = write_config(tmp_path, [prod, staging, "555555555555"])

    code = main(["setup", "accounts", "--config", str(config), "--endpoint-url", org_endpoint])
    out = capsys.readouterr().out

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"accounts file {tmp_path / 'accounts.yaml'} (not read by the config yet)"
    assert any(line.split() == ["add", prod, "Production"] for line in lines)
    assert any(line.split() == ["add", staging, "Staging"] for line in lines)
    assert "Sandbox" not in out
    assert (
        "note: account 555555555555 (roles.role2) is not in the organization: "
        "name it under `accounts:` in broker.yaml" in lines
    )
    assert (
        "note: broker.yaml does not read accounts.yaml yet: add `accounts_file: accounts.yaml`"
        in lines
    )
    assert lines[-1] == "dry run: 2 to add, 0 to rename; re-run with --apply to write accounts.yaml"
    assert not (tmp_path / "accounts.yaml").exists()


def test_apply_writes_the_file_the_loader_merges_and_a_rerun_plans_nothing(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod, staging = create(org_endpoint, "Production", "Staging")
    config = write_config(tmp_path, [prod, staging])
    before = config.read_text()

    code = main(
        ["setup", "accounts", "--config", str(config), "--endpoint-url", org_endpoint, "--apply"]
    )
    lines = capsys.readouterr().out.splitlines()

    assert code == 0
    assert lines[-3:] == [
        f"wrote {tmp_path / 'accounts.yaml'}: 2 added, 0 renamed; read back: confirmed",
        f"add this line to {config} so the broker reads it:",
        "  accounts_file: accounts.yaml",
    ]
    assert sum("accounts_file: accounts.yaml" in line for line in lines) == 1  # said once
    assert config.read_text() == before  # the operator's file, comments and all, untouched
    written = yaml.safe_load((tmp_path / "accounts.yaml").read_text())
    assert written == {"accounts": {prod: {"name": "Production"}, staging: {"name": "Staging"}}}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file

    # Before the line is added, a re-run already plans against the file it wrote.
    code, doc, _ = run(capsys, org_endpoint, config)
    assert (code, doc["changes"], doc["linked"]) == (0, 0, False)

    config.write_text(before + "accounts_file: accounts.yaml\n")
    loaded = load_config(config)
    assert (loaded.account_name(prod), loaded.account_name(staging)) == ("Production", "Staging")
    stamp = (tmp_path / "accounts.yaml").stat().st_mtime_ns
    code, doc, _ = run(capsys, org_endpoint, config, "--apply")
    assert (code, doc["changes"], doc["linked"], doc["applied"]) == (0, 0, True, False)
    assert set(rows(doc).values()) == {("unchanged", "Production"), ("unchanged", "Staging")}
    assert (tmp_path / "accounts.yaml").stat().st_mtime_ns == stamp  # not even rewritten


def test_rename_keeps_the_account_and_reports_those_organizations_no_longer_lists(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (prod,) = create(org_endpoint, "Production EU")
    gone = "999988887777"
    (tmp_path / "names.yaml").write_text(
        yaml.safe_dump({"accounts": {prod: {"name": "Production"}, gone: {"name": "Old"}}})
    )
    config = write_config(tmp_path, [prod], accounts_file="names.yaml")

    code, doc, _ = run(capsys, org_endpoint, config, "--apply")

    assert code == 0
    assert rows(doc) == {prod: ("rename", "Production EU"), gone: ("not listed", "Old")}
    assert doc["accounts"][0]["detail"] == "was 'Production'"
    assert doc["accounts"][1]["detail"] == "Organizations does not list it: kept, never deleted"
    assert load_config(config).accounts_file == "names.yaml"
    names = {a: x.name for a, x in load_config(config).accounts.items()}
    assert names == {prod: "Production EU", gone: "Old"}


def test_suspended_accounts_are_named_and_flagged(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, closed = create(org_endpoint, "Live", "Closed")
    org(org_endpoint).close_account(AccountId=closed)
    config = write_config(tmp_path, [live, closed])

    code, doc, _ = run(capsys, org_endpoint, config)

    assert code == 0
    flagged = {r["account"]: (r["status"], r["detail"]) for r in doc["accounts"]}
    assert flagged == {live: ("ACTIVE", ""), closed: ("SUSPENDED", "SUSPENDED (closed)")}


def test_accounts_named_in_the_config_itself_are_left_there(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod, staging = create(org_endpoint, "Production", "Staging")
    hand = {prod: {"name": "Prod (by hand)"}, staging: {"name": "Staging"}}
    config = write_config(tmp_path, [prod, staging], accounts=hand)

    code, doc, _ = run(capsys, org_endpoint, config, "--apply")

    assert code == 0
    assert rows(doc) == {prod: ("kept", "Prod (by hand)"), staging: ("unchanged", "Staging")}
    details = {r["account"]: r["detail"] for r in doc["accounts"]}
    assert details == {
        prod: "named in broker.yaml, left there; Organizations: 'Production'",
        staging: "named in broker.yaml",
    }
    assert not (tmp_path / "accounts.yaml").exists()  # nothing to write


def test_accounts_file_option_and_a_conflicting_one(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (prod,) = create(org_endpoint, "Production")
    config = write_config(tmp_path, [prod])
    target = tmp_path / "iam" / "names.yaml"

    code, doc, _ = run(capsys, org_endpoint, config, "--apply", "--accounts-file", str(target))
    assert (code, doc["applied"], doc["confirmed"]) == (0, True, True)
    assert "add `accounts_file: iam/names.yaml`" in doc["notes"][-1]
    assert yaml.safe_load(target.read_text()) == {"accounts": {prod: {"name": "Production"}}}

    linked = write_config(tmp_path, [prod], accounts_file="iam/names.yaml")
    code, _, err = run(capsys, org_endpoint, linked, "--accounts-file", str(tmp_path / "x.yaml"))
    assert code == 2
    assert err.strip().endswith(f"--accounts-file {tmp_path / 'x.yaml'} names another file")


def test_outside_an_organization_is_one_line_and_exit_2(
    iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, ["111122223333"])

    code, doc, err = run(capsys, iam_endpoint, config, "--apply")

    assert (code, doc) == (2, {})
    assert err.count("\n") == 1
    assert err.startswith(
        "broker: Organizations ListAccounts: AWSOrganizationsNotInUseException: "
        "Your account is not a member of an organization. (these credentials' account is in no "
        "organization;"
    )
    assert not (tmp_path / "accounts.yaml").exists()


def member_credentials(endpoint: str, account: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign as a member account: its OrganizationAccountAccessRole, assumed from management."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="t1"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])


def test_a_member_account_is_refused_and_a_delegated_administrator_reads(
    org_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, other = create(org_endpoint, "Security", "Workloads")
    config = write_config(tmp_path, [other])
    with monkeypatch.context() as m:
        member_credentials(org_endpoint, member, m)
        code, doc, err = run(capsys, org_endpoint, config)
    assert (code, doc) == (2, {})
    assert err == (
        "broker: Organizations ListAccounts: AccessDeniedException: You don't have permissions "
        "to access this resource. (ListAccounts needs the organization's management account or "
        "a delegated administrator, with organizations:ListAccounts (pass --profile))\n"
    )

    org(org_endpoint).register_delegated_administrator(
        AccountId=member, ServicePrincipal="ssm.amazonaws.com"
    )
    member_credentials(org_endpoint, member, monkeypatch)
    code, doc, _ = run(capsys, org_endpoint, config)
    assert (code, rows(doc)) == (0, {other: ("add", "Workloads")})


def test_no_credentials_is_one_line_and_exit_2(
    moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, ["111122223333"])
    code, _, err = run(capsys, moto_server, config)
    assert code == 2
    assert err == (
        "broker: no AWS credentials: set AWS_PROFILE or the usual AWS_* variables, "
        "or pass --profile\n"
    )


def test_a_config_may_name_the_file_before_its_first_run(
    org_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (prod,) = create(org_endpoint, "Production")
    config = write_config(tmp_path, [prod], accounts_file="names.yaml")

    code, doc, _ = run(capsys, org_endpoint, config, "--apply")

    assert (code, doc["linked"], doc["confirmed"]) == (0, True, True)
    assert not any("accounts_file" in n for n in doc["notes"])
    assert load_config(config).account_name(prod) == "Production"
