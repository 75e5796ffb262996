"""The accounts file: merged by the loader, refused clearly, planned and written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.config import load_config, parse_config
from broker.errors import ConfigError
from broker.setup.accounts import file_document, plan_accounts, write_atomically
from broker.setup.check import check
from broker.setup.organizations import OrgAccount

PROD, STAGING = "111122223333", "444455556666"


def base(**extra: Any) -> dict[str, Any]:
    return {
        "identity_providers": {
            "gha": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["sts"]}
        },
        "roles": {
            "deploy": {"arn": f"arn:aws:iam::{PROD}:role/deploy"},
            "reports": {"arn": f"arn:aws:iam::{STAGING}:role/reports"},
        },
        "rules": [
            {"name": "r", "when": {"claim": "sub", "equals": "x"}, "grant": ["deploy", "reports"]}
        ],
        **extra,
    }


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def test_the_loader_merges_the_file_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "conf" / "names" / "accounts.yaml", {"accounts": {STAGING: {"name": "Staging"}}}
    )
    config = write(
        tmp_path / "conf" / "broker.yaml",
        base(accounts={PROD: {"name": "Production"}}, accounts_file="names/accounts.yaml"),
    )
    monkeypatch.chdir(tmp_path)  # not the config's directory

    loaded = load_config(config)

    assert loaded.accounts_file == "names/accounts.yaml"
    assert (loaded.account_name(PROD), loaded.account_name(STAGING)) == ("Production", "Staging")


def test_unquoted_ids_in_the_file_are_read_as_in_the_config(tmp_path: Path) -> None:
    write(tmp_path / "accounts.yaml", f"accounts:\n  {PROD}: {{name: Production}}\n")
    config = write(tmp_path / "broker.yaml", base(accounts_file="accounts.yaml"))
    assert load_config(config).account_name(PROD) == "Production"


def test_an_account_in_both_places_is_refused(tmp_path: Path) -> None:
    names = write(tmp_path / "accounts.yaml", {"accounts": {PROD: {"name": "Production"}}})
    config = write(
        tmp_path / "broker.yaml",
        f"accounts_file: accounts.yaml\naccounts:\n  {PROD}: {{name: Prod}}\n"
        + yaml.safe_dump(base()),
    )
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.detail == (
        "invalid configuration:\n"
        f"  accounts: {PROD} also in accounts_file {names}: keep each account in one place"
    )


BAD_FILES = [
    pytest.param(None, "cannot read accounts file {path}: No such file or directory", id="missing"),
    pytest.param("accounts: [", "{path}: not valid YAML: ", id="not-yaml"),
    pytest.param(
        "- 111122223333\n",
        "{path}: an accounts file must be a YAML mapping with `accounts:`",
        id="not-a-mapping",
    ),
    pytest.param(
        "accounts:\n  '1234': {name: x}\n",
        "{path}: invalid accounts file:\n  accounts.1234.[key]: String should match pattern",
        id="short-id",
    ),
    pytest.param(
        "accounts:\n  0111222333: {name: x}\n",
        "{path}: invalid accounts file:\n  accounts: account id 19211483 must be 12 digits; quote it in YAML",
        id="octal-id",
    ),
    pytest.param(
        "accounts:\n  '111122223333': {name: x, owner: y}\n",
        "{path}: invalid accounts file:\n  accounts.111122223333.owner: unknown key",
        id="unknown-field",
    ),
    pytest.param(
        "roles: {}\n", "{path}: invalid accounts file:\n  roles: unknown key", id="other-section"
    ),
    pytest.param(
        "accounts:\n  '111122223333': {name: a}\n  '111122223333': {name: b}\n",
        "{path}: not valid YAML: ",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_accounts_file_is_a_clear_error(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "accounts.yaml"
    if text is not None:
        write(path, text)
    config = write(tmp_path / "broker.yaml", base(accounts_file="accounts.yaml"))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.detail.startswith(message.format(path=path))
    report = check(str(config), offline=True)
    assert not report.passed
    assert report.findings[0][2].startswith(message.format(path=path))


def test_parse_config_without_a_source_reads_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "accounts.yaml", {"accounts": {PROD: {"name": "Production"}}})
    monkeypatch.chdir(tmp_path)
    assert parse_config(base(accounts_file="accounts.yaml")).account_name(PROD) == "Production"


def unnamed(report: Any) -> list[str]:
    return [m for lv, w, m in report.findings if lv == "warning" and w == "accounts"]


def test_config_check_flags_accounts_roles_use_without_a_name(tmp_path: Path) -> None:
    config = write(tmp_path / "broker.yaml", base(accounts={PROD: {"name": "Production"}}))
    assert unnamed(check(str(config), offline=True)) == [
        f"account {STAGING} (roles reports) has no name: "
        "`broker setup accounts` reads the names from AWS Organizations"
    ]
    write(tmp_path / "accounts.yaml", {"accounts": {STAGING: {"name": "Staging"}}})
    config = write(
        tmp_path / "broker.yaml",
        base(accounts={PROD: {"name": "Production"}}, accounts_file="accounts.yaml"),
    )
    assert unnamed(check(str(config), offline=True)) == []


def plan(config: dict[str, Any], in_file: dict[str, dict[str, Any]], *, everything: bool) -> Any:
    org = [OrgAccount(PROD, "Production", "ACTIVE"), OrgAccount("777788889999", "Other", "ACTIVE")]
    return plan_accounts(
        parse_config(config),
        config_path="/etc/broker/broker.yaml",
        target=Path("/etc/broker/accounts.yaml"),
        linked=True,
        in_file=in_file,
        org=org,
        everything=everything,
    )


def test_templates_for_any_account_suggest_all() -> None:
    config = base()
    config["rules"].append(
        {
            "name": "groups",
            "when": {"claim": "groups", "regex": r"aws-(?P<account>\d{12})"},
            "grant": [{"arn": "arn:aws:iam::{account}:role/x"}],
        }
    )
    referenced = plan(config, {}, everything=False)
    assert referenced.notes[-1] == (
        "roles in accounts the config does not name can be granted (rule groups builds role "
        "ARNs for any account): --all names every account of the organization"
    )
    assert [r.account for r in referenced.rows] == [PROD]
    everything = plan(config, {}, everything=True)
    assert [r.account for r in everything.rows] == [PROD, "777788889999"]
    assert not any("--all" in n for n in everything.notes)


def test_a_rewrite_keeps_every_entry_and_its_other_fields() -> None:
    in_file = {PROD: {"name": "Prod", "note": "kept"}, "999988887777": {"name": "Gone"}}
    applied = plan(base(), in_file, everything=False)
    text = file_document(in_file, applied)
    assert text.startswith("# Account names from AWS Organizations")
    assert yaml.safe_load(text) == {
        "accounts": {
            PROD: {"name": "Production", "note": "kept"},
            "999988887777": {"name": "Gone"},
        }
    }


def test_write_atomically_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.yaml", "old\n")
    path.chmod(0o640)
    write_atomically(path, "new\n")
    assert (path.read_text(), path.stat().st_mode & 0o777) == ("new\n", 0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["accounts.yaml"]


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "accounts.yaml", "old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["accounts.yaml"]


def test_a_nameless_account_is_left_as_it_is() -> None:
    org = [OrgAccount(PROD, " ", "ACTIVE"), OrgAccount(STAGING, "", "ACTIVE")]
    planned = plan_accounts(
        parse_config(base()),
        config_path="broker.yaml",
        target=Path("accounts.yaml"),
        linked=True,
        in_file={PROD: {"name": "Production"}},
        org=org,
        everything=True,
    )
    assert [(r.action, r.account, r.name) for r in planned.rows] == [
        ("unchanged", PROD, "Production")
    ]
    assert planned.notes == [
        f"Organizations gives account {PROD} no name: left as it is",
        f"Organizations gives account {STAGING} no name: left as it is",
    ]
