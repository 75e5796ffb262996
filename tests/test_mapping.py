"""Rules → role grants: union of grants, deny wins, templates, SAML signed-role intersection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import pytest

from broker.config import Config, parse_config
from broker.errors import ConfigError
from broker.identity import Identity, SignedRole, WebIdentityToken
from broker.mapping import SIGNED_BY_IDP, Decision, RuleTrace, map_roles

PROD = "111122223333"
STAGING = "444455556666"
SANDBOX = "777788889999"  # no name configured
PRINCIPAL = f"arn:aws:iam::{PROD}:saml-provider/corp"
GROUPS = "http://schemas.xmlsoap.org/claims/Group"

ROLES: dict[str, Any] = {
    "deploy-prod": {
        "arn": f"arn:aws:iam::{PROD}:role/deploy",
        "max_session_seconds": 7200,
        "session_policy": '{"Version": "2012-10-17", "Statement": []}',
        "session_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    },
    "deploy-staging": {"arn": f"arn:aws:iam::{STAGING}:role/deploy"},
    "readonly-staging": {"arn": f"arn:aws:iam::{STAGING}:role/ReadOnly"},
    "sandbox-admin": {"arn": f"arn:aws:iam::{SANDBOX}:role/Admin"},
}


def arn(name: str) -> str:
    return str(ROLES[name]["arn"])


def make_config(
    rules: Sequence[dict[str, Any]], *, trust_assertion_roles: bool = True, **extra: Any
) -> Config:
    return parse_config(
        {
            "identity_providers": {
                "gh": {
                    "type": "oidc",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "audiences": ["sts.amazonaws.com"],
                },
                "k8s": {
                    "type": "oidc",
                    "issuer": "https://oidc.example.com",
                    "audiences": ["sts.amazonaws.com"],
                },
                "corp": {
                    "type": "saml",
                    "entity_id": "https://idp.example.com",
                    "sso_url": "https://idp.example.com/sso",
                    "certificates": ["MIIBfake"],
                    "trust_assertion_roles": trust_assertion_roles,
                },
            },
            "accounts": {PROD: {"name": "Production"}, STAGING: {"name": "Staging"}},
            "roles": ROLES,
            "rules": list(rules),
            **extra,
        }
    )


def oidc(attributes: dict[str, Any], idp: str = "gh") -> Identity:
    return Identity(
        protocol="oidc",
        idp=idp,
        issuer="https://token.actions.githubusercontent.com",
        subject=str(attributes.get("sub", "repo:org/app")),
        attributes=attributes,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        proof=WebIdentityToken("x", "s"),
    )


def saml(attributes: dict[str, Any], signed: Sequence[str], principal: str = PRINCIPAL) -> Identity:
    return Identity(
        protocol="saml",
        idp="corp",
        issuer="https://idp.example.com",
        subject="alice@example.com",
        attributes=attributes,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        proof=WebIdentityToken("x", "s"),
        signed_roles=tuple(SignedRole(a, principal) for a in signed),
    )


def trace(decision: Decision, rule: str) -> RuleTrace:
    (found,) = [t for t in decision.trace if t.rule == rule]
    return found


def granted(decision: Decision) -> list[str]:
    return [g.arn for g in decision.grants]


def refused(decision: Decision) -> dict[str, str]:
    return {r.arn: r.reason for r in decision.refused}


GROUP_TEMPLATE_RULE: dict[str, Any] = {
    "name": "groups-to-roles",
    "when": {"claim": "groups", "regex": r"aws-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)"},
    "grant": [{"arn": "arn:aws:iam::{account}:role/{role}"}],
}


# --- OIDC: union, deny, idp scoping -------------------------------------------------------


def test_grants_from_several_rules_are_unioned() -> None:
    config = make_config(
        [
            {"name": "a", "when": {"claim": "repo", "equals": "org/app"}, "grant": ["deploy-prod"]},
            {"name": "b", "when": {"claim": "owner", "equals": "org"}, "grant": ["deploy-staging"]},
            {
                "name": "c",
                "when": {"claim": "owner", "equals": "other"},
                "grant": ["sandbox-admin"],
            },
        ]
    )
    decision = map_roles(oidc({"repo": "org/app", "owner": "org"}), config)
    assert sorted(granted(decision)) == sorted([arn("deploy-prod"), arn("deploy-staging")])
    assert {g.name: g.rule for g in decision.grants} == {"deploy-prod": "a", "deploy-staging": "b"}
    assert [(t.rule, t.matched) for t in decision.trace] == [("a", True), ("b", True), ("c", False)]
    assert decision.refused == ()


def test_same_role_from_two_rules_is_granted_once_by_the_first() -> None:
    config = make_config(
        [
            {"name": "first", "grant": ["deploy-staging"]},
            {"name": "second", "grant": ["deploy-staging", "readonly-staging"]},
        ]
    )
    decision = map_roles(oidc({}), config)
    assert [(g.name, g.rule) for g in decision.grants] == [
        ("deploy-staging", "first"),
        ("readonly-staging", "second"),
    ]
    assert trace(decision, "first").reason == "no conditions"


def test_grant_star_is_every_configured_role() -> None:
    decision = map_roles(oidc({}), make_config([{"name": "all", "grant": "*"}]))
    assert sorted(granted(decision)) == sorted(arn(n) for n in ROLES)


@dataclass(frozen=True)
class DenyCase:
    name: str
    rules: list[dict[str, Any]]
    claims: dict[str, Any]
    granted: set[str]  # role names
    denied: dict[str, str]  # role name → rule that denied it


_GRANT_BOTH = {"name": "grant", "grant": ["deploy-prod", "deploy-staging"]}

DENY_CASES = [
    DenyCase(
        "by-name",
        [_GRANT_BOTH, {"name": "no-prod", "deny": ["deploy-prod"]}],
        {},
        {"deploy-staging"},
        {"deploy-prod": "no-prod"},
    ),
    DenyCase(
        "by-name-before-grant",
        [{"name": "no-prod", "deny": ["deploy-prod"]}, _GRANT_BOTH],
        {},
        {"deploy-staging"},
        {"deploy-prod": "no-prod"},
    ),
    DenyCase(
        "by-star",
        [_GRANT_BOTH, {"name": "forks", "when": {"claim": "fork", "equals": True}, "deny": "*"}],
        {"fork": True},
        set(),
        {"deploy-prod": "forks", "deploy-staging": "forks"},
    ),
    DenyCase(
        "star-not-matched",
        [_GRANT_BOTH, {"name": "forks", "when": {"claim": "fork", "equals": True}, "deny": "*"}],
        {"fork": False},
        {"deploy-prod", "deploy-staging"},
        {},
    ),
    DenyCase(
        "by-template-arn",
        [
            _GRANT_BOTH,
            {
                "name": "deny-tmpl",
                "when": {"claim": "blocked", "regex": r"(?P<account>\d{12})"},
                "deny": [{"arn": "arn:aws:iam::{account}:role/deploy"}],
            },
        ],
        {"blocked": PROD},
        {"deploy-staging"},
        {"deploy-prod": "deny-tmpl"},
    ),
    DenyCase(
        "deny-in-same-rule",
        [{"name": "both", "grant": ["deploy-prod", "deploy-staging"], "deny": ["deploy-prod"]}],
        {},
        {"deploy-staging"},
        {"deploy-prod": "both"},
    ),
    DenyCase(
        "deny-for-other-idp-ignored",
        [_GRANT_BOTH, {"name": "k8s-only", "idp": "k8s", "deny": "*"}],
        {},
        {"deploy-prod", "deploy-staging"},
        {},
    ),
    DenyCase(
        "first-denying-rule-named",
        [_GRANT_BOTH, {"name": "d1", "deny": ["deploy-prod"]}, {"name": "d2", "deny": "*"}],
        {},
        set(),
        {"deploy-prod": "d1", "deploy-staging": "d2"},
    ),
]


@pytest.mark.parametrize("case", DENY_CASES, ids=attrgetter("name"))
def test_deny_wins(case: DenyCase) -> None:
    decision = map_roles(oidc(case.claims), make_config(case.rules))
    assert {g.name for g in decision.grants} == case.granted
    assert refused(decision) == {
        arn(name): f"denied by rule {rule}" for name, rule in case.denied.items()
    }


def test_deny_star_is_traced_as_star() -> None:
    decision = map_roles(oidc({}), make_config([{"name": "nothing", "deny": "*"}]))
    assert trace(decision, "nothing").denied == ("*",)
    assert decision.grants == ()
    assert decision.refused == ()


def test_rule_for_another_idp_does_not_apply() -> None:
    config = make_config(
        [
            {"name": "k8s-rule", "idp": "k8s", "grant": ["readonly-staging"]},
            {"name": "any-idp", "idp": "*", "grant": ["deploy-staging"]},
            {"name": "gh-rule", "idp": "gh", "grant": ["deploy-prod"]},
        ]
    )
    decision = map_roles(oidc({}, idp="gh"), config)
    other = trace(decision, "k8s-rule")
    assert (other.applies, other.matched) == (False, False)
    assert other.reason == "rule is for IdP 'k8s'"
    assert other.granted == ()
    assert {g.name for g in decision.grants} == {"deploy-staging", "deploy-prod"}

    decision = map_roles(oidc({}, idp="k8s"), config)
    assert {g.name for g in decision.grants} == {"readonly-staging", "deploy-staging"}
    assert trace(decision, "gh-rule").applies is False


def test_unmatched_rule_trace_carries_the_reason() -> None:
    config = make_config(
        [
            {
                "name": "main",
                "when": {"claim": "ref", "equals": "refs/heads/main"},
                "grant": ["deploy-prod"],
            }
        ]
    )
    decision = map_roles(oidc({"ref": "refs/heads/dev"}), config)
    t = trace(decision, "main")
    assert (t.applies, t.matched, t.granted) == (True, False, ())
    assert "ref" in t.reason
    assert "refs/heads/dev" in t.reason
    assert t.as_dict() == {
        "rule": "main",
        "applies": True,
        "matched": False,
        "reason": t.reason,
        "granted": [],
        "denied": [],
        "paths": {"ref": ["ref"]},
    }


# --- templates ---------------------------------------------------------------------------


def test_template_arn_from_regex_groups() -> None:
    config = make_config([GROUP_TEMPLATE_RULE])
    decision = map_roles(oidc({"groups": [f"aws-{STAGING}-Deployer", "staff"]}), config)
    (grant,) = decision.grants
    assert grant.arn == f"arn:aws:iam::{STAGING}:role/Deployer"
    assert grant.name == "Deployer"
    assert grant.account_id == STAGING
    assert grant.account_name == "Staging"
    assert grant.max_session_seconds == 3600
    assert grant.rule == "groups-to-roles"
    assert grant.session_policy is None
    assert trace(decision, "groups-to-roles").granted == (grant.arn,)


def test_two_matching_values_give_two_grants() -> None:
    config = make_config([GROUP_TEMPLATE_RULE])
    groups = [f"aws-{PROD}-Admin", f"aws-{SANDBOX}-Dev", f"aws-{PROD}-Admin"]
    decision = map_roles(oidc({"groups": groups}), config)
    assert granted(decision) == [
        f"arn:aws:iam::{SANDBOX}:role/Dev",  # no account name sorts first
        f"arn:aws:iam::{PROD}:role/Admin",
    ]
    assert trace(decision, "groups-to-roles").granted == (
        f"arn:aws:iam::{PROD}:role/Admin",
        f"arn:aws:iam::{SANDBOX}:role/Dev",
    )


def test_template_matching_a_configured_role_uses_its_settings() -> None:
    config = make_config([GROUP_TEMPLATE_RULE])
    decision = map_roles(oidc({"groups": [f"aws-{PROD}-deploy"]}), config)
    (grant,) = decision.grants
    assert grant.name == "deploy-prod"
    assert grant.max_session_seconds == 7200
    assert grant.session_policy == '{"Version":"2012-10-17","Statement":[]}'
    assert grant.session_policy_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)


def test_template_max_session_seconds() -> None:
    rule = {
        **GROUP_TEMPLATE_RULE,
        "grant": [{"arn": "arn:aws:iam::{account}:role/{role}", "max_session_seconds": 14400}],
    }
    decision = map_roles(oidc({"groups": [f"aws-{PROD}-X"]}), make_config([rule]))
    assert decision.grants[0].max_session_seconds == 14400


def test_each_template_keeps_its_own_max_session_seconds() -> None:
    rule = {
        "name": "two-templates",
        "when": {"claim": "g", "regex": r"(?P<role>[a-z]+)"},
        "grant": [
            {"arn": f"arn:aws:iam::{PROD}:role/short-{{role}}", "max_session_seconds": 900},
            {"arn": f"arn:aws:iam::{PROD}:role/long-{{role}}", "max_session_seconds": 7200},
        ],
    }
    decision = map_roles(oidc({"g": "x"}), make_config([rule]))
    assert {g.name: g.max_session_seconds for g in decision.grants} == {
        "short-x": 900,
        "long-x": 7200,
    }


@dataclass(frozen=True)
class BadTemplate:
    name: str
    template: str
    regex: str
    value: str
    note: str


BAD_TEMPLATES = [
    BadTemplate(
        "not-a-role-arn",
        "arn:aws:iam::{account}:role/{role}",
        r"aws-(?P<account>\d+)-(?P<role>.+)",
        "aws-12345-Admin",
        "template produced 'arn:aws:iam::12345:role/Admin', not a role ARN",
    ),
    BadTemplate(
        "bad-role-characters",
        "arn:aws:iam::{account}:role/{role}",
        r"aws-(?P<account>\d{12})-(?P<role>.+)",
        f"aws-{PROD}-Ad min",
        "not a role ARN",
    ),
    BadTemplate(
        "other-partition",
        "arn:aws-cn:iam::{account}:role/{role}",
        r"aws-(?P<account>\d{12})-(?P<role>\w+)",
        f"aws-{PROD}-Admin",
        f"template produced 'arn:aws-cn:iam::{PROD}:role/Admin', outside partition aws",
    ),
    BadTemplate(
        "partition-from-claim",
        "arn:{p}:iam::{account}:role/{role}",
        r"(?P<p>[a-z-]+):(?P<account>\d{12}):(?P<role>\w+)",
        f"aws-us-gov:{PROD}:Admin",
        "outside partition aws",
    ),
]


@pytest.mark.parametrize("case", BAD_TEMPLATES, ids=attrgetter("name"))
def test_bad_template_result_is_noted_not_granted(case: BadTemplate) -> None:
    rule = {
        "name": "t",
        "when": {"claim": "g", "regex": case.regex},
        "grant": [{"arn": case.template}],
    }
    decision = map_roles(oidc({"g": case.value}), make_config([rule]))
    t = trace(decision, "t")
    assert t.matched
    assert t.granted == ()
    assert case.note in t.reason
    assert decision.grants == ()


def test_bad_template_value_does_not_spoil_good_ones() -> None:
    config = make_config([GROUP_TEMPLATE_RULE])
    decision = map_roles(oidc({"groups": [f"aws-{PROD}-Ok", f"aws-{PROD}-" + "x" * 70]}), config)
    assert granted(decision) == [f"arn:aws:iam::{PROD}:role/Ok"]
    assert "not a role ARN" in trace(decision, "groups-to-roles").reason


@dataclass(frozen=True)
class UnboundCase:
    name: str
    when: dict[str, Any]
    claims: dict[str, Any]


UNBOUND_CASES = [
    UnboundCase(
        # group_names() counts an optional group as always bound.
        "optional-group-did-not-participate",
        {"claim": "g", "regex": r"aws-(?P<account>\d{12})(-(?P<role>\w+))?"},
        {"g": f"aws-{PROD}"},
    ),
    UnboundCase(
        # each: none matches when no value matches, so the regex binds nothing.
        "each-none",
        {"claim": "g", "regex": r"aws-(?P<account>\d{12})-(?P<role>\w+)", "each": "none"},
        {"g": ["staff"]},
    ),
]


@pytest.mark.parametrize("case", UNBOUND_CASES, ids=attrgetter("name"))
def test_template_with_unbound_group_does_not_crash(case: UnboundCase) -> None:
    rule = {
        "name": "t",
        "when": case.when,
        "grant": [{"arn": "arn:aws:iam::{account}:role/{role}"}],
    }
    try:
        config = make_config([rule])
    except ConfigError as exc:  # refused at load is as good as a note at run time
        assert "always binds" in exc.detail  # noqa: PT017
        return
    decision = map_roles(oidc(case.claims), config)
    assert decision.grants == ()


# --- grant details and ordering ----------------------------------------------------------


def test_configured_role_grant_fields() -> None:
    decision = map_roles(oidc({}), make_config([{"name": "r", "grant": ["deploy-prod"]}]))
    (grant,) = decision.grants
    assert grant.name == "deploy-prod"
    assert grant.arn == arn("deploy-prod")
    assert grant.account_id == PROD
    assert grant.account_name == "Production"
    assert grant.max_session_seconds == 7200
    assert grant.session_policy == '{"Version":"2012-10-17","Statement":[]}'
    assert grant.session_policy_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    assert grant.principal_arn is None


def test_grants_are_sorted_by_account_name_then_id_then_role() -> None:
    decision = map_roles(oidc({}), make_config([{"name": "all", "grant": "*"}]))
    assert [(g.account_name, g.name) for g in decision.grants] == [
        (None, "sandbox-admin"),
        ("Production", "deploy-prod"),
        ("Staging", "deploy-staging"),
        ("Staging", "readonly-staging"),
    ]


def test_decision_find() -> None:
    decision = map_roles(
        oidc({}), make_config([{"name": "r", "grant": ["deploy-prod", "deploy-staging"]}])
    )
    (by_name,) = decision.find("deploy-staging")
    (by_arn,) = decision.find(arn("deploy-staging"))
    assert by_name is not None
    assert by_name is by_arn
    assert by_name.arn == arn("deploy-staging")
    assert decision.find("readonly-staging") == ()
    assert decision.find(arn("readonly-staging")) == ()
    assert decision.find("deploy") == ()
    assert decision.find("") == ()


def test_map_roles_is_pure() -> None:
    config = make_config([GROUP_TEMPLATE_RULE, {"name": "r", "grant": ["deploy-prod"]}])
    identity = oidc({"groups": [f"aws-{PROD}-Admin"]})
    assert map_roles(identity, config) == map_roles(identity, config)


# --- SAML --------------------------------------------------------------------------------


def test_saml_trust_assertion_roles_grants_every_signed_pair() -> None:
    config = make_config(
        [{"name": "nothing", "when": {"claim": GROUPS, "contains": "x"}, "grant": ["deploy-prod"]}]
    )
    signed = [arn("deploy-staging"), f"arn:aws:iam::{SANDBOX}:role/Unconfigured"]
    decision = map_roles(saml({GROUPS: ["staff"]}, signed), config)
    assert sorted(granted(decision)) == sorted(signed)
    for g in decision.grants:
        assert g.rule == SIGNED_BY_IDP
        assert g.principal_arn == PRINCIPAL
    (unconfigured,) = decision.find(f"arn:aws:iam::{SANDBOX}:role/Unconfigured")
    assert unconfigured is not None
    assert (unconfigured.name, unconfigured.max_session_seconds) == ("Unconfigured", 3600)
    assert decision.find("deploy-staging") != ()
    assert decision.refused == ()


def test_saml_signed_pair_denied_by_a_rule() -> None:
    config = make_config([{"name": "no-staging", "deny": ["deploy-staging"]}])
    decision = map_roles(saml({}, [arn("deploy-staging"), arn("readonly-staging")]), config)
    assert granted(decision) == [arn("readonly-staging")]
    assert refused(decision) == {arn("deploy-staging"): "denied by rule no-staging"}


def test_saml_deny_star_covers_signed_pairs() -> None:
    config = make_config(
        [{"name": "lockdown", "when": {"claim": GROUPS, "contains": "suspended"}, "deny": "*"}]
    )
    decision = map_roles(saml({GROUPS: ["suspended"]}, [arn("deploy-staging")]), config)
    assert decision.grants == ()
    assert refused(decision) == {arn("deploy-staging"): "denied by rule lockdown"}


def test_saml_rule_granted_signed_pair_keeps_its_rule_and_gets_the_principal() -> None:
    config = make_config(
        [
            {
                "name": "admins",
                "when": {"claim": GROUPS, "contains": "admins"},
                "grant": ["deploy-prod"],
            }
        ]
    )
    other_principal = f"arn:aws:iam::{PROD}:saml-provider/other"
    decision = map_roles(saml({GROUPS: ["admins"]}, [arn("deploy-prod")], other_principal), config)
    (grant,) = decision.grants
    assert grant.rule == "admins"
    assert grant.principal_arn == other_principal
    assert grant.max_session_seconds == 7200


def test_saml_without_trust_only_rule_granted_pairs() -> None:
    config = make_config(
        [
            {
                "name": "admins",
                "when": {"claim": GROUPS, "contains": "admins"},
                "grant": ["deploy-prod"],
            }
        ],
        trust_assertion_roles=False,
    )
    decision = map_roles(
        saml({GROUPS: ["admins"]}, [arn("deploy-prod"), arn("deploy-staging")]), config
    )
    (grant,) = decision.grants
    assert (grant.name, grant.rule, grant.principal_arn) == ("deploy-prod", "admins", PRINCIPAL)
    assert refused(decision) == {
        arn(
            "deploy-staging"
        ): "signed by the IdP but no rule grants it (trust_assertion_roles is false)"
    }


def test_saml_without_trust_and_no_rule_grants_nothing() -> None:
    config = make_config(
        [
            {
                "name": "admins",
                "when": {"claim": GROUPS, "contains": "admins"},
                "grant": ["deploy-prod"],
            }
        ],
        trust_assertion_roles=False,
    )
    decision = map_roles(saml({GROUPS: ["staff"]}, [arn("deploy-prod")]), config)
    assert decision.grants == ()
    assert list(refused(decision)) == [arn("deploy-prod")]


@pytest.mark.parametrize("trust", [True, False], ids=["trust", "no-trust"])
def test_saml_rule_granted_role_not_signed_is_refused(trust: bool) -> None:
    config = make_config(
        [{"name": "admins", "grant": ["deploy-prod", "deploy-staging"]}],
        trust_assertion_roles=trust,
    )
    decision = map_roles(saml({}, [arn("deploy-staging")]), config)
    assert granted(decision) == [arn("deploy-staging")]
    assert refused(decision) == {
        arn("deploy-prod"): "granted by rule admins but not signed by the IdP — STS would refuse"
    }


def test_saml_templated_grant_must_be_signed() -> None:
    rule = {
        **GROUP_TEMPLATE_RULE,
        "when": {"claim": GROUPS, "regex": GROUP_TEMPLATE_RULE["when"]["regex"]},
    }
    config = make_config([rule], trust_assertion_roles=False)
    signed_arn = f"arn:aws:iam::{SANDBOX}:role/Dev"
    decision = map_roles(
        saml({GROUPS: [f"aws-{SANDBOX}-Dev", f"aws-{PROD}-Admin"]}, [signed_arn]), config
    )
    assert granted(decision) == [signed_arn]
    assert decision.grants[0].principal_arn == PRINCIPAL
    assert "not signed by the IdP" in refused(decision)[f"arn:aws:iam::{PROD}:role/Admin"]


def test_saml_no_signed_roles_grants_nothing() -> None:
    config = make_config([{"name": "all", "grant": "*"}])
    decision = map_roles(saml({}, []), config)
    assert decision.grants == ()
    assert len(decision.refused) == len(ROLES)


def test_oidc_ignores_signed_roles() -> None:
    identity = Identity(
        protocol="oidc",
        idp="gh",
        issuer="https://token.actions.githubusercontent.com",
        subject="s",
        attributes={},
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        proof=WebIdentityToken("x", "s"),
        signed_roles=(SignedRole(arn("deploy-prod"), PRINCIPAL),),
    )
    decision = map_roles(identity, make_config([{"name": "r", "grant": ["deploy-staging"]}]))
    assert granted(decision) == [arn("deploy-staging")]
    assert decision.grants[0].principal_arn is None
