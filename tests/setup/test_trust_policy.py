"""`broker setup trust-policy`: documents compared as parsed JSON against expected policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main
from broker.setup.conditions import regex_tokens

ACCOUNT = "111122223333"
GHA = "token.actions.githubusercontent.com"
GHA_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GHA}"
K8S = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
AUD = {"StringEquals": {f"{GHA}:aud": "sts.amazonaws.com"}}


def role(name: str) -> dict[str, str]:
    return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}


CONFIG: dict[str, Any] = {
    "server": {"base_url": "https://broker.example.com"},
    "identity_providers": {
        "corp": {"type": "saml", "metadata_file": "idp.xml"},
        "gha": {"type": "oidc", "issuer": f"https://{GHA}", "audiences": ["sts.amazonaws.com"]},
        "k8s": {
            "type": "oidc",
            "issuer": f"https://{K8S}",
            "audiences": ["sts.amazonaws.com", "broker"],
        },
    },
    "roles": {
        n: role(n)
        for n in (
            "deploy",
            "admin",
            "widened",
            "opaque",
            "negated",
            "either",
            "team-x",
            "k8s",
            "loose",
            "both",
        )
    },
    "rules": [
        {
            "name": "gha-main",
            "idp": "gha",
            "when": [
                {"claim": "sub", "equals": "repo:org/app:ref:refs/heads/main"},
                {"claim": "repository_owner", "equals": "org"},
            ],
            "grant": "deploy",
        },
        # Another issuer's tokens never reach this IdP: the rule must not widen the policy.
        {
            "name": "other-iss",
            "idp": "gha",
            "when": {"claim": "iss", "equals": "https://other"},
            "grant": "deploy",
        },
        {
            "name": "gha-env",
            "idp": "gha",
            "when": {"claim": "sub", "glob": "repo:org/app:environment:*"},
            "grant": "deploy",
        },
        {
            "name": "admins",
            "idp": "corp",
            "when": {"claim": "groups", "contains": "admins"},
            "grant": ["admin", "both"],
        },
        {
            "name": "widened",
            "idp": "gha",
            "when": {"claim": "sub", "regex": "^repo:org/(?P<r>[a-z]+):ref:refs/heads/main$"},
            "grant": "widened",
        },
        {
            "name": "opaque",
            "idp": "gha",
            "when": {"claim": "sub", "regex": r"repo:org/\w+\b.*"},
            "grant": "opaque",
        },
        {
            "name": "negated",
            "idp": "gha",
            "when": {
                "all": [
                    {"claim": "sub", "glob": "repo:org/app:*"},
                    {"none": [{"claim": "sub", "glob": "repo:org/app:pull_request*"}]},
                ]
            },
            "grant": "negated",
        },
        {
            "name": "either",
            "idp": "gha",
            "when": {
                "any": [
                    {"claim": "sub", "equals": "repo:a/b:ref:x"},
                    {"claim": "sub", "in": ["repo:c/d:ref:y"]},
                ]
            },
            "grant": "either",
        },
        {
            "name": "teams",
            "idp": "gha",
            "when": {
                "claim": "sub",
                "regex": "repo:org/(?P<team>[a-z]+)-infra:ref:refs/heads/main",
            },
            "grant": {"arn": f"arn:aws:iam::{ACCOUNT}:role/team-{{team}}"},
        },
        {
            "name": "k8s",
            "idp": "k8s",
            "when": {
                "claim": "sub",
                "equals": "system:serviceaccount:ci:runner",
                "case_sensitive": False,
            },
            "grant": "k8s",
        },
        {
            "name": "loose",
            "idp": "gha",
            "when": {"claim": "repository_owner", "equals": "org"},
            "grant": "loose",
        },
        {
            "name": "both-gha",
            "idp": "gha",
            "when": {"claim": "sub", "equals": "repo:o/r:ref:main"},
            "grant": "both",
        },
    ],
}


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return str(path)


def policy(
    config_file: str, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[dict[str, Any], list[str]]:
    code = main(["setup", "trust-policy", "--config", config_file, "--json", *argv])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["policy"]["Version"] == "2012-10-17"
    return out["policy"], out["warnings"] + out["broker_only"]


def oidc(condition: dict[str, Any], arn: str = GHA_ARN) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Federated": arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def test_saml_audience_is_the_broker_acs(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, _ = policy(config_file, capsys, "--role", "admin")
    assert doc["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"},
            "Action": "sts:AssumeRoleWithSAML",
            "Condition": {"StringEquals": {"SAML:aud": "https://broker.example.com/saml/acs"}},
        }
    ]


def test_saml_tags_source_identity_and_provider_override(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = "arn:aws:iam::444455556666:saml-provider/Okta"
    doc, _ = policy(
        config_file, capsys, "--role", "admin", "--tags", "--source-identity", "--provider-arn", arn
    )
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"Federated": arn}
    assert statement["Action"] == [
        "sts:AssumeRoleWithSAML",
        "sts:TagSession",
        "sts:SetSourceIdentity",
    ]


def test_two_rules_union_equality_and_glob(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, warnings = policy(config_file, capsys, "--role", "deploy")
    assert doc["Statement"] == [
        oidc(
            AUD
            | {
                "StringLike": {
                    f"{GHA}:sub": ["repo:org/app:environment:*", "repo:org/app:ref:refs/heads/main"]
                }
            }
        )
    ]
    assert any("repository_owner" in w and "cannot check" in w for w in warnings)
    assert "rule other-iss can never match on sub/aud; it adds nothing" in warnings


def test_equalities_only_stay_string_equals(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, _ = policy(config_file, capsys, "--role", "either")
    assert doc["Statement"] == [
        oidc(
            AUD
            | {
                "StringEquals": {
                    f"{GHA}:aud": "sts.amazonaws.com",
                    f"{GHA}:sub": ["repo:a/b:ref:x", "repo:c/d:ref:y"],
                }
            }
        )
    ]


def test_regex_widened_to_wildcards(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc, warnings = policy(config_file, capsys, "--role", "widened")
    assert doc["Statement"] == [
        oidc(AUD | {"StringLike": {f"{GHA}:sub": "repo:org/?*:ref:refs/heads/main"}})
    ]
    assert any("widened" in w for w in warnings)


def test_inexpressible_regex_warns_and_leaves_sub_open(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, warnings = policy(config_file, capsys, "--role", "opaque", "--allow-any-subject")
    assert doc["Statement"] == [oidc(AUD)]
    assert any("cannot be expressed in the IAM policy language" in w for w in warnings)
    assert any(w.startswith("WARNING: rule opaque") and "ANY identity" in w for w in warnings)


def test_none_becomes_string_not_like(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc, _ = policy(config_file, capsys, "--role", "negated")
    assert doc["Statement"] == [
        oidc(
            AUD
            | {
                "StringLike": {f"{GHA}:sub": "repo:org/app:*"},
                "StringNotLike": {f"{GHA}:sub": "repo:org/app:pull_request*"},
            }
        )
    ]


def test_grant_template_and_owner_only_rule(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, _ = policy(config_file, capsys, "--role", "team-x")
    assert doc["Statement"] == [
        oidc(AUD | {"StringLike": {f"{GHA}:sub": "repo:org/?*-infra:ref:refs/heads/main"}})
    ]
    # repository_owner is not an IAM key, but GitHub's sub format carries it.
    doc, _ = policy(config_file, capsys, "--role", "loose")
    assert doc["Statement"] == [oidc(AUD | {"StringLike": {f"{GHA}:sub": "repo:org/*:*"}})]


def test_case_insensitive_equality_and_issuer_path(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, _ = policy(config_file, capsys, "--role", "k8s")
    assert doc["Statement"] == [
        oidc(
            {
                "StringEquals": {f"{K8S}:aud": ["broker", "sts.amazonaws.com"]},
                "StringEqualsIgnoreCase": {f"{K8S}:sub": "system:serviceaccount:ci:runner"},
            },
            arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{K8S}",
        )
    ]


def test_role_granted_by_two_idps(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc, _ = policy(config_file, capsys, "--role", "both")
    assert [s["Action"] for s in doc["Statement"]] == [
        "sts:AssumeRoleWithSAML",
        "sts:AssumeRoleWithWebIdentity",
    ]
    doc, _ = policy(config_file, capsys, "--role", "both", "--idp", "gha")
    assert doc["Statement"] == [
        oidc(
            AUD
            | {
                "StringEquals": {
                    f"{GHA}:aud": "sts.amazonaws.com",
                    f"{GHA}:sub": "repo:o/r:ref:main",
                }
            }
        )
    ]


def test_human_output_is_the_bare_policy(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--role", "opaque", "--allow-any-subject"]
    assert main(["setup", "trust-policy", "--config", config_file, *argv]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["Statement"][0]["Principal"] == {"Federated": GHA_ARN}
    assert "warning: WARNING: rule opaque" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--role", "nope"], "no role named 'nope'"),
        (["--role", "admin", "--idp", "nope"], "no identity provider named 'nope'"),
        (["--role", "both", "--provider-arn", "arn:aws:iam::1:saml-provider/x"], "--provider-arn"),
    ],
    ids=["unknown-role", "unknown-idp", "ambiguous-provider-arn"],
)
def test_refusals(
    config_file: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["setup", "trust-policy", "--config", config_file, *argv]) == 1
    assert message in capsys.readouterr().err


REGEXES = [
    ("literal", r"repo:org/app\.v2", [(list("repo:org/app.v2"), True)]),
    ("dot-star", r"repo:.*", [([*"repo:", "\0*"], True)]),
    ("dot-plus", r"a.+", [(["a", "\0?", "\0*"], True)]),
    ("class", r"a[0-9]", [(["a", "\0?"], False)]),
    ("alternation", r"a|b", [(["a"], True), (["b"], True)]),
    ("optional", r"ab?", [(["a", "\0*"], False)]),
    ("group-alternation", r"(a|b)c", None),
    ("lookahead", r"(?=a)a", None),
    ("backreference", r"(?P<x>a)(?P=x)", None),
    ("counted", r"a{2}", None),
    ("word-boundary", r"a\b", None),
]


@pytest.mark.parametrize(("name", "pattern", "expected"), REGEXES, ids=[r[0] for r in REGEXES])
def test_regex_translation(name: str, pattern: str, expected: Any) -> None:
    assert regex_tokens(pattern) == expected


def test_saml_idp_config_asks_for_tag_and_source_identity_actions(tmp_path: Path) -> None:
    """`session_tags` / `source_identity` on the IdP add the STS actions they need."""
    from broker.config import parse_config
    from broker.setup.trust_policy import trust_policy

    config = parse_config(
        {
            "server": {"base_url": "https://broker.example.com"},
            "identity_providers": {
                "okta": {
                    "type": "saml",
                    "entity_id": "http://www.okta.com/x",
                    "certificates": ["MIIB"],
                    "session_tags": True,
                    "source_identity": True,
                }
            },
            "roles": {"admin": {"arn": "arn:aws:iam::111122223333:role/Admin"}},
            "rules": [{"name": "all", "idp": "okta", "grant": "admin"}],
        }
    )
    [statement] = trust_policy(config, "admin").document["Statement"]
    assert statement["Action"] == [
        "sts:AssumeRoleWithSAML",
        "sts:TagSession",
        "sts:SetSourceIdentity",
    ]
    assert statement["Condition"] == {
        "StringEquals": {"SAML:aud": "https://broker.example.com/saml/acs"}
    }
