"""Trust policies never wider than the rules: a subject IAM can check, or a refusal; broker-only limits labelled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main

pytestmark = pytest.mark.unit

EXAMPLE = str(Path(__file__).parents[2] / "config" / "broker.example.yaml")
ACCOUNT = "111122223333"
GHA = "token.actions.githubusercontent.com"
GHA_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GHA}"
K8S = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
AUD = "sts.amazonaws.com"


def config(rules: list[dict[str, Any]], **role: Any) -> dict[str, Any]:
    return {
        "server": {"base_url": "https://broker.example.com"},
        "identity_providers": {
            "gha": {"type": "oidc", "issuer": f"https://{GHA}", "audiences": [AUD]},
            "k8s": {"type": "oidc", "issuer": f"https://{K8S}", "audiences": [AUD]},
        },
        "roles": {"prod": {"arn": f"arn:aws:iam::{ACCOUNT}:role/prod", **role}},
        "rules": rules,
    }


def write(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["setup", "trust-policy", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def statements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "--config", write(tmp_path, config(rules)), "--role", "prod")
    assert code == 0, err
    return list(json.loads(out)["Statement"])


def gha(condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Federated": GHA_ARN},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def test_example_production_role_is_refused_not_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The finding: with the example config, deploy-prod printed only `aud` and exited 0."""
    code, out, err = run(capsys, "--config", EXAMPLE, "--role", "deploy-prod")
    assert code != 0
    assert out == ""
    # The templated rule on every IdP is named, with the claim IAM cannot check.
    assert "groups-to-roles" in err
    assert 'idp: "*"' in err
    assert "groups" in err
    assert "--allow-any-subject" in err


def test_explicit_opt_in_prints_the_wide_policy_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _err = run(
        capsys, "--config", EXAMPLE, "--role", "deploy-prod", "--allow-any-subject", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert any("ANY identity" in w for w in doc["warnings"])
    assert doc["policy"]["Statement"]


def test_repository_and_ref_become_sub_and_github_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "name": "main",
        "idp": "gha",
        "when": [
            {"claim": "repository", "equals": "org/app"},
            {"claim": "ref", "equals": "refs/heads/main"},
        ],
        "grant": "prod",
    }
    assert statements(tmp_path, capsys, [rule]) == [
        gha(
            {
                "StringEquals": {
                    f"{GHA}:aud": AUD,
                    f"{GHA}:ref": "refs/heads/main",
                    f"{GHA}:repository": "org/app",
                },
                # A job with an environment gets the environment form whatever its ref.
                "StringLike": {
                    f"{GHA}:sub": [
                        "repo:org/app:environment:*",
                        "repo:org/app:ref:refs/heads/main",
                    ]
                },
            }
        )
    ]


def test_environment_becomes_an_exact_sub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "name": "env",
        "idp": "gha",
        "when": [
            {"claim": "repository", "equals": "org/app"},
            {"claim": "environment", "equals": "production"},
        ],
        "grant": "prod",
    }
    [statement] = statements(tmp_path, capsys, [rule])
    assert statement["Condition"]["StringEquals"][f"{GHA}:sub"] == (
        "repo:org/app:environment:production"
    )


def test_owner_only_pins_the_owner_and_pull_refs_keep_the_pull_request_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "name": "org",
        "idp": "gha",
        "when": [
            {"claim": "repository_owner", "equals": "org"},
            {"claim": "ref", "glob": "refs/*"},
        ],
        "grant": "prod",
    }
    [statement] = statements(tmp_path, capsys, [rule])
    assert statement["Condition"]["StringLike"] == {
        f"{GHA}:sub": [
            "repo:org/*:environment:*",
            "repo:org/*:pull_request",
            "repo:org/*:ref:refs/*",
        ],
        f"{GHA}:ref": "refs/*",
    }


def test_kubernetes_service_account_becomes_sub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "name": "pods",
        "idp": "k8s",
        "when": [
            {"claim": "kubernetes.io.namespace", "equals": "reporting"},
            {"claim": "kubernetes.io.serviceaccount.name", "in": ["exporter", "loader"]},
        ],
        "grant": "prod",
    }
    [statement] = statements(tmp_path, capsys, [rule])
    assert statement["Condition"] == {
        "StringEquals": {
            f"{K8S}:aud": AUD,
            f"{K8S}:sub": [
                "system:serviceaccount:reporting:exporter",
                "system:serviceaccount:reporting:loader",
            ],
        }
    }


UNPINNED = [
    ("claims-iam-cannot-see", "gha", {"claim": "event_name", "equals": "push"}, "event_name"),
    ("ref-without-repository", "gha", {"claim": "ref", "equals": "refs/heads/main"}, "ref"),
    ("every-service-account", "k8s", {"claim": "sub", "glob": "system:serviceaccount:*"}, "sub"),
    ("no-when-at-all", "gha", None, "any token"),
]


@pytest.mark.parametrize(("name", "idp", "when", "named"), UNPINNED, ids=[c[0] for c in UNPINNED])
def test_no_subject_constraint_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    idp: str,
    when: dict[str, Any] | None,
    named: str,
) -> None:
    rule: dict[str, Any] = {"name": name, "idp": idp, "grant": "prod"}
    if when is not None:
        rule["when"] = when
    code, out, err = run(capsys, "--config", write(tmp_path, config([rule])), "--role", "prod")
    assert (code, out) == (1, "")
    assert f"rule {name}" in err
    assert named in err


def test_a_template_on_every_idp_names_each_idp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [
        {
            "name": "pinned",
            "idp": "gha",
            "when": {"claim": "repository", "equals": "org/app"},
            "grant": "prod",
        },
        {
            "name": "groups",
            "idp": "*",
            "when": {"claim": "groups", "regex": r"aws-(?P<a>\d{12})-(?P<r>.+)"},
            "grant": {"arn": "arn:aws:iam::{a}:role/{r}"},
        },
    ]
    code, out, err = run(capsys, "--config", write(tmp_path, config(rules)), "--role", "prod")
    assert (code, out) == (1, "")
    assert "rule groups" in err
    assert "for gha" in err
    assert "for k8s" in err
    assert "rule pinned" not in err


def test_broker_only_limits_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules: list[dict[str, Any]] = [
        {
            "name": "main",
            "idp": "gha",
            "when": [
                {"claim": "repository", "equals": "org/app"},
                {"claim": "run_attempt", "equals": "1"},
            ],
            "grant": "prod",
        },
        {
            "name": "no-forks",
            "idp": "gha",
            "when": {"claim": "event_name", "equals": "pull_request_target"},
            "deny": "prod",
        },
    ]
    doc = config(
        rules, max_session_seconds=1800, session_policy_arns=["arn:aws:iam::aws:policy/ReadOnly"]
    )
    path = write(tmp_path, doc)
    code, out, _ = run(capsys, "--config", path, "--role", "prod", "--json")
    assert code == 0
    got = json.loads(out)
    text = "\n".join(got["broker_only"])
    assert "rule main" in text
    assert "run_attempt" in text
    assert "deny rule no-forks" in text
    assert "session policy" in text
    assert "1800" in text
    assert "MaxSessionDuration" in text
    assert "issuer mode" in got["remedy"]
    assert "aws:SourceIp" in got["remedy"]

    code, out, err = run(capsys, "--config", path, "--role", "prod")
    assert code == 0
    json.loads(out)  # stdout stays the bare policy, ready to paste
    assert "broker only" in err
    assert "deny rule no-forks" in err


def test_config_check_labels_broker_only_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules: list[dict[str, Any]] = [
        {
            "name": "main",
            "idp": "gha",
            "when": {"claim": "repository", "equals": "org/app"},
            "grant": "prod",
        },
        {"name": "deny", "idp": "gha", "when": {"claim": "actor", "equals": "x"}, "deny": "prod"},
        {"name": "loose", "idp": "k8s", "grant": "prod"},
    ]
    path = write(tmp_path, config(rules, session_policy='{"Version": "2012-10-17"}'))
    main(["config", "check", "--config", path, "--offline", "--json"])
    findings = json.loads(capsys.readouterr().out)["findings"]
    about = [f["message"] for f in findings if f["where"] == "roles.prod"]
    assert any("broker only" in m and "deny rule deny" in m for m in about), about
    assert any("no subject" in m and "rule loose" in m for m in about), about
