"""Claim paths from the operator's side: `broker explain` shows the walk, `config check --claims`
names the paths a real token does not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main
from broker.config import parse_config
from broker.mapping import unresolved_paths

pytestmark = pytest.mark.unit

ISSUER = "https://oidc.eks.us-west-2.amazonaws.com/id/80D562ED8026E91294D52E09BEA261D4"
CONFIG: dict[str, Any] = {
    "identity_providers": {
        "eks": {"type": "oidc", "issuer": ISSUER, "audiences": ["sts.amazonaws.com"]},
        "github": {
            "type": "oidc",
            "issuer": "https://token.actions.githubusercontent.com",
            "audiences": ["sts.amazonaws.com"],
        },
    },
    "roles": {"reports": {"arn": "arn:aws:iam::111122223333:role/reports"}},
    "rules": [
        {
            "name": "reporting-namespace",
            "idp": "eks",
            "when": [
                {"claim": "kubernetes.io.namespace", "equals": "reporting"},
                {"claim": "/kubernetes.io/serviceaccount/name", "equals": "exporter"},
            ],
            "grant": "reports",
        },
        {
            "name": "typo",
            "idp": "eks",
            "when": {"claim": "kubernetes.io.serviceaccount.nmae", "equals": "exporter"},
            "grant": "reports",
        },
        {
            "name": "github-only",
            "idp": "github",
            "when": {"claim": "repository", "equals": "x/y"},
            "grant": "reports",
        },
    ],
}
POD_CLAIMS = {
    "aud": ["sts.amazonaws.com"],
    "iss": ISSUER,
    "kubernetes.io": {
        "namespace": "reporting",
        "pod": {"name": "report-7f9c", "uid": "0d64402f-5c87-469c-b441-8bd332b1bd07"},
        "serviceaccount": {"name": "exporter", "uid": "8145a6d5-4932-48e9-86b5-7c33eb9d6ad1"},
    },
    "sub": "system:serviceaccount:reporting:exporter",
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "broker.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    claims = tmp_path / "pod.json"
    claims.write_text(json.dumps(POD_CLAIMS), encoding="utf-8")
    return config, claims


def test_explain_json_shows_the_keys_each_path_walked(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, claims = files
    code = main(
        ["explain", "--config", str(config), "--idp", "eks", "--claims", str(claims), "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    rules = {r["rule"]: r for r in doc["rules"]}
    assert rules["reporting-namespace"]["matched"] is True
    assert rules["reporting-namespace"]["paths"] == {
        "kubernetes.io.namespace": ["kubernetes.io", "namespace"],
        "/kubernetes.io/serviceaccount/name": ["kubernetes.io", "serviceaccount", "name"],
    }
    assert rules["typo"]["paths"] == {"kubernetes.io.serviceaccount.nmae": None}
    assert '["kubernetes.io"]["serviceaccount"]' in rules["typo"]["reason"]
    assert [g["name"] for g in doc["granted"]] == ["reports"]


def test_explain_table_shows_the_walk(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, claims = files
    main(["explain", "--config", str(config), "--idp", "eks", "--claims", str(claims)])
    out = capsys.readouterr().out
    assert 'kubernetes.io.namespace ["kubernetes.io"]["namespace"]=[reporting]' in out


def test_unresolved_paths_lists_only_that_idps_rules() -> None:
    config = parse_config(CONFIG)
    missing = unresolved_paths(config, "eks", POD_CLAIMS)
    assert [(m.rule, m.path, m.reached) for m in missing] == [
        ("typo", "kubernetes.io.serviceaccount.nmae", ("kubernetes.io", "serviceaccount"))
    ]
    assert "stops after" in missing[0].message()


def test_config_check_warns_about_paths_the_sample_lacks(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, claims = files
    argv = ["config", "check", "--config", str(config), "--offline", "--json"]
    code = main([*argv, "--claims", f"eks={claims}"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0  # a warning, not an error: a sample is one token, not every token
    # The sample's findings (other checks, e.g. broker-only restrictions, warn on their own).
    warnings = [
        f["message"]
        for f in doc["findings"]
        if f["level"] == "warning" and f["where"].startswith("--claims")
    ]
    assert any("typo" in w and "kubernetes.io.serviceaccount.nmae" in w for w in warnings)
    assert not any("reporting-namespace" in w for w in warnings)


@pytest.mark.parametrize(
    ("arg", "expect"),
    [
        ("nobody={claims}", "no identity provider named 'nobody'"),
        ("eks=/nonexistent.json", "cannot read"),
    ],
)
def test_config_check_bad_sample_is_an_error(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], arg: str, expect: str
) -> None:
    config, claims = files
    argv = ["config", "check", "--config", str(config), "--offline", "--json"]
    assert main([*argv, "--claims", arg.format(claims=claims)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any(expect in f["message"] for f in doc["findings"] if f["level"] == "error")


def test_config_check_malformed_claims_argument(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = files
    assert main(["config", "check", "--config", str(config), "--offline", "--claims", "eks"]) == 1
    assert "IDP=FILE" in capsys.readouterr().err
