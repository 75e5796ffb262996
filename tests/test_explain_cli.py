"""`broker explain`: every rule's verdict for a set of claims, as a table or as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "broker.example.yaml"

MAIN_PUSH = {
    "sub": "repo:example-org/app:ref:refs/heads/main",
    "repository": "example-org/app",
    "repository_owner": "Example-Org",
    "ref": "refs/heads/main",
    "event_name": "push",
}
FORK_PR = {
    "sub": "repo:example-org/app:pull_request",
    "repository": "example-org/app",
    "repository_owner": "example-org",
    "ref": "refs/pull/7/merge",
    "event_name": "pull_request",
}
PROD_DEPLOY = "arn:aws:iam::111122223333:role/github-deploy"
STAGING_DEPLOY = "arn:aws:iam::444455556666:role/github-deploy"


@dataclass
class Run:
    code: int
    out: str
    err: str


def write_json(tmp_path: Path, data: Any, name: str = "claims.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def explain(
    capsys: pytest.CaptureFixture[str], *args: str | Path, config: Path | None = EXAMPLE
) -> Run:
    argv = ["explain", *(["--config", str(config)] if config else []), *map(str, args)]
    code = main(argv)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def table_rows(out: str) -> dict[str, str]:
    """Rule name → its whole table line."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("RULE "))
    rows: dict[str, str] = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        rows[line.split()[0]] = line
    return rows


def result_of(row: str) -> str:
    for result in ("no match", "MATCH", "n/a"):
        if f"  {result}  " in row:
            return result
    raise AssertionError(f"no result column in {row!r}")


@dataclass(frozen=True)
class TableCase:
    name: str
    idp: str
    claims: dict[str, Any]
    results: dict[str, str]  # rule → MATCH / no match / n/a
    reasons: dict[str, str]  # rule → a fragment of its WHY column
    granted: tuple[str, ...]
    code: int


TABLE_CASES = [
    TableCase(
        "main-push",
        "github",
        MAIN_PUSH,
        {
            "app-main-deploys-prod": "MATCH",
            "org-deploys-staging": "MATCH",
            "no-forks": "no match",
            "reporting-pods": "n/a",
            "groups-to-roles": "no match",
        },
        {
            "app-main-deploys-prod": "ref=[refs/heads/main] equals 'refs/heads/main'",
            "org-deploys-staging": "repository_owner=[Example-Org] equals 'example-org'",
            "no-forks": "no value of event_name [push] in",
            "reporting-pods": "rule is for IdP 'kubernetes'",
            "groups-to-roles": "groups is absent",
        },
        (PROD_DEPLOY, STAGING_DEPLOY),
        0,
    ),
    TableCase(
        "fork-pull-request",
        "github",
        FORK_PR,
        {
            "app-main-deploys-prod": "no match",
            "org-deploys-staging": "MATCH",
            "no-forks": "MATCH",
            "reporting-pods": "n/a",
            "groups-to-roles": "no match",
        },
        {
            "app-main-deploys-prod": "no value of ref [refs/pull/7/merge]",
            "no-forks": "event_name=[pull_request] in",
        },
        (),
        1,
    ),
    TableCase(
        "kubernetes-pod-with-groups",
        "kubernetes",
        {"sub": "system:serviceaccount:reporting:exporter", "groups": ["aws-444455556666-Auditor"]},
        {
            "app-main-deploys-prod": "n/a",
            "org-deploys-staging": "n/a",
            "no-forks": "n/a",
            "reporting-pods": "MATCH",
            "groups-to-roles": "MATCH",
        },
        {"reporting-pods": "sub=[system:serviceaccount:reporting:exporter] glob"},
        ("arn:aws:iam::444455556666:role/ReadOnly", "arn:aws:iam::444455556666:role/Auditor"),
        0,
    ),
    TableCase(
        "nobody",
        "github",
        {"sub": "repo:someone/else:ref:refs/heads/main", "repository_owner": "someone"},
        {
            "app-main-deploys-prod": "no match",
            "org-deploys-staging": "no match",
            "no-forks": "no match",
            "reporting-pods": "n/a",
            "groups-to-roles": "no match",
        },
        {"app-main-deploys-prod": "repository is absent", "no-forks": "event_name is absent"},
        (),
        1,
    ),
]


@pytest.mark.parametrize("case", TABLE_CASES, ids=attrgetter("name"))
def test_table(case: TableCase, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = explain(capsys, "--idp", case.idp, "--claims", write_json(tmp_path, case.claims))
    assert run.code == case.code
    assert run.err == ""
    assert run.out.startswith(f"identity: {case.claims['sub']} from {case.idp}\n")
    rows = table_rows(run.out)
    assert list(rows) == list(case.results)
    assert {rule: result_of(row) for rule, row in rows.items()} == case.results
    for rule, fragment in case.reasons.items():
        assert fragment in rows[rule], rows[rule]
    granted_section = run.out.split("\ngranted:", 1)[1].split("refused:", 1)[0]
    if case.granted:
        for arn in case.granted:
            assert arn in granted_section
    else:
        assert granted_section.startswith(" none")


def test_table_shows_roles_and_refusals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = explain(capsys, "--idp", "github", "--claims", write_json(tmp_path, FORK_PR))
    rows = table_rows(run.out)
    assert f"+{STAGING_DEPLOY}" in rows["org-deploys-staging"]
    assert f"-{STAGING_DEPLOY}" in rows["no-forks"]
    assert f"-{PROD_DEPLOY}" in rows["no-forks"]
    refused = run.out.split("\nrefused:\n", 1)[1]
    assert f"  {STAGING_DEPLOY}: denied by rule no-forks" in refused.splitlines()


def test_table_shows_account_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = explain(capsys, "--idp", "github", "--claims", write_json(tmp_path, MAIN_PUSH))
    assert "account Production (111122223333)  by rule app-main-deploys-prod" in run.out
    assert "account Staging (444455556666)  by rule org-deploys-staging" in run.out


def test_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = explain(capsys, "--idp", "github", "--claims", write_json(tmp_path, MAIN_PUSH), "--json")
    assert run.code == 0
    doc = json.loads(run.out)
    assert doc["idp"] == "github"
    assert doc["subject"] == MAIN_PUSH["sub"]
    assert [r["rule"] for r in doc["rules"]] == [
        "app-main-deploys-prod",
        "org-deploys-staging",
        "no-forks",
        "reporting-pods",
        "groups-to-roles",
    ]
    by_rule = {r["rule"]: r for r in doc["rules"]}
    assert by_rule["app-main-deploys-prod"] == {
        "rule": "app-main-deploys-prod",
        "applies": True,
        "matched": True,
        "reason": by_rule["app-main-deploys-prod"]["reason"],
        "granted": [PROD_DEPLOY],
        "denied": [],
        "paths": {"ref": ["ref"], "repository": ["repository"]},
    }
    assert (by_rule["reporting-pods"]["applies"], by_rule["reporting-pods"]["matched"]) == (
        False,
        False,
    )
    assert by_rule["no-forks"]["matched"] is False
    assert doc["granted"] == [
        {"name": "deploy-prod", "arn": PROD_DEPLOY, "rule": "app-main-deploys-prod"},
        {"name": "deploy-staging", "arn": STAGING_DEPLOY, "rule": "org-deploys-staging"},
    ]
    assert doc["refused"] == []


def test_json_nothing_granted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = explain(capsys, "--json", "--idp", "github", "--claims", write_json(tmp_path, FORK_PR))
    assert run.code == 1
    doc = json.loads(run.out)
    assert doc["granted"] == []
    assert doc["refused"] == [{"arn": STAGING_DEPLOY, "reason": "denied by rule no-forks"}]
    no_forks = next(r for r in doc["rules"] if r["rule"] == "no-forks")
    assert no_forks["matched"] is True
    assert sorted(no_forks["denied"]) == sorted([PROD_DEPLOY, STAGING_DEPLOY])


def test_config_from_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_CONFIG", str(EXAMPLE))
    run = explain(
        capsys, "--idp", "github", "--claims", write_json(tmp_path, MAIN_PUSH), config=None
    )
    assert run.code == 0


def test_saml_idp_from_claims_has_nothing_signed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["identity_providers"]["corp"] = {
        "type": "saml",
        "entity_id": "https://idp.example.com",
        "sso_url": "https://idp.example.com/sso",
        "certificates": ["MIIBfake"],
    }
    config = tmp_path / "broker.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    claims = write_json(tmp_path, {"groups": ["aws-444455556666-Auditor"]})
    run = explain(capsys, "--json", "--idp", "corp", "--claims", claims, config=config)
    assert run.code == 1
    doc = json.loads(run.out)
    assert doc["subject"] == ""
    assert doc["granted"] == []
    assert doc["refused"] == [
        {
            "arn": "arn:aws:iam::444455556666:role/Auditor",
            "reason": "granted by rule groups-to-roles but not signed by the IdP — STS would refuse",
        }
    ]


@dataclass(frozen=True)
class UsageCase:
    name: str
    args: tuple[str, ...]
    claims: Any
    config: str | None  # YAML text; None: the shipped example
    says: tuple[str, ...]


_BAD_CONFIG: dict[str, Any] = {
    "server": {"bse_url": "http://127.0.0.1:8080"},
    "identity_providers": {
        "github": {"type": "oidc", "issuer": "https://i.example.com", "audiences": ["a"]}
    },
}

USAGE_CASES = [
    UsageCase(
        "unknown-idp",
        ("--idp", "gitlab"),
        MAIN_PUSH,
        None,
        ("no identity provider named 'gitlab'",),
    ),
    UsageCase("no-idp", (), MAIN_PUSH, None, ("give --idp and --claims",)),
    UsageCase("claims-not-object", ("--idp", "github"), ["a"], None, ("must hold a JSON object",)),
    UsageCase(
        "bad-config",
        ("--idp", "github"),
        MAIN_PUSH,
        yaml.safe_dump(_BAD_CONFIG),
        ("broker: invalid configuration", "server.bse_url: unknown key"),
    ),
    UsageCase(
        "bad-config-rule",
        ("--idp", "github"),
        MAIN_PUSH,
        yaml.safe_dump(
            {
                "identity_providers": _BAD_CONFIG["identity_providers"],
                "rules": [{"name": "r", "when": {"claim": "a", "regex": "("}, "grant": "*"}],
            }
        ),
        ("rules.0.when", "invalid regular expression"),
    ),
    UsageCase(
        "config-not-mapping",
        ("--idp", "github"),
        MAIN_PUSH,
        "- a\n- list\n",
        ("must be a YAML mapping",),
    ),
    UsageCase(
        "config-bad-yaml", ("--idp", "github"), MAIN_PUSH, "server: [\n", ("not valid YAML",)
    ),
]


@pytest.mark.parametrize("case", USAGE_CASES, ids=attrgetter("name"))
def test_usage_errors_exit_2(
    case: UsageCase, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = EXAMPLE
    if case.config is not None:
        config = tmp_path / "broker.yaml"
        config.write_text(case.config, encoding="utf-8")
    run = explain(capsys, *case.args, "--claims", write_json(tmp_path, case.claims), config=config)
    assert run.code == 2
    assert run.out == ""
    for part in case.says:
        assert part in run.err, run.err


def test_missing_config_file_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = explain(
        capsys,
        "--idp",
        "github",
        "--claims",
        write_json(tmp_path, MAIN_PUSH),
        config=tmp_path / "nope.yaml",
    )
    assert run.code == 2
    assert "cannot read configuration" in run.err


def test_no_config_at_all_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_CONFIG", raising=False)
    run = explain(
        capsys, "--idp", "github", "--claims", write_json(tmp_path, MAIN_PUSH), config=None
    )
    assert run.code == 2
    assert "BROKER_CONFIG" in run.err


@dataclass(frozen=True)
class ClaimsFileCase:
    name: str
    content: str | None  # None: the file does not exist


CLAIMS_FILE_CASES = [
    ClaimsFileCase("missing", None),
    ClaimsFileCase("not-json", "{not json"),
]


@pytest.mark.parametrize("case", CLAIMS_FILE_CASES, ids=attrgetter("name"))
def test_unreadable_claims_file_exit_2(
    case: ClaimsFileCase, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    claims = tmp_path / "claims.json"
    if case.content is not None:
        claims.write_text(case.content, encoding="utf-8")
    run = explain(capsys, "--idp", "github", "--claims", claims)
    assert run.code == 2
    assert "claims" in run.err
