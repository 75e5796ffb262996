"""The stand-in's trust policy evaluator, on the examples the IAM User Guide documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker_demo.conditions import PolicyError, parse_condition
from broker_demo.trustpolicy import TrustPolicy, parse_trust_policy

SAML_PROVIDER = "arn:aws:iam::111122223333:saml-provider/corp"
GITHUB = "arn:aws:iam::012345678910:oidc-provider/token.actions.githubusercontent.com"
EKS_KEY = "oidc.eks.us-east-1.amazonaws.com/id/111122223333"


def holds(condition: dict[str, Any], **context: str | list[str]) -> bool:
    """Evaluate one Condition block against a request context (key names as given)."""
    ctx = {
        k.lower(): (tuple(v) if isinstance(v, list) else (v,))
        for k, v in context.items()
        if not (isinstance(v, list) and v == ["<absent>"])
    }
    return all(t.holds(ctx) for t in parse_condition(condition))


def ctx(**keys: Any) -> dict[str, tuple[str, ...]]:
    return {k.lower(): tuple(v) if isinstance(v, list) else (v,) for k, v in keys.items()}


# reference_policies_multi-value-conditions.md, "Evaluation logic for conditions with multiple
# keys or values": operators and keys AND, values of one key OR.
MULTI = {
    "StringEqualsIgnoreCase": {
        "aws:PrincipalTag/department": ["finance", "hr", "legal"],
        "aws:PrincipalTag/role": ["audit", "security"],
    },
    "StringEquals": {"aws:PrincipalAccount": "123456789012"},
}


@pytest.mark.parametrize(
    ("department", "role", "account", "expected"),
    [
        ("HR", "audit", "123456789012", True),
        ("legal", "Security", "123456789012", True),
        ("sales", "audit", "123456789012", False),
        ("hr", "admin", "123456789012", False),
        ("hr", "audit", "999999999999", False),
    ],
)
def test_keys_and_operators_and_values_or(
    department: str, role: str, account: str, expected: bool
) -> None:
    context = {
        "aws:principaltag/department": (department,),
        "aws:principaltag/role": (role,),
        "aws:principalaccount": (account,),
    }
    assert all(t.holds(context) for t in parse_condition(MULTI)) is expected


def test_negated_operator_with_several_values_is_an_and() -> None:
    """The Note in the same section: StringNotEquals on a list must match none of them."""
    block = {"StringNotEquals": {"aws:PrincipalAccount": ["111111111111", "222222222222"]}}
    assert holds(block, **{"aws:PrincipalAccount": "333333333333"})
    assert not holds(block, **{"aws:PrincipalAccount": "222222222222"})


# reference_policies_multi-value-conditions.md, "Evaluation logic for multiple values with
# condition set operators": request {PostDateTime, UserName} against [PostDateTime, Message, Tags].
ATTRIBUTES = ["PostDateTime", "Message", "Tags"]


@pytest.mark.parametrize(
    ("operator", "request_values", "expected"),
    [
        ("ForAllValues:StringEquals", ["PostDateTime", "UserName"], False),
        ("ForAllValues:StringEquals", ["PostDateTime", "Message"], True),
        ("ForAnyValue:StringEquals", ["PostDateTime", "UserName"], True),
        ("ForAnyValue:StringEquals", ["UserName"], False),
        # "If the key values in the request resolve to an empty data set … ForAllValues returns
        # true. A condition operator modified by ForAnyValue returns false."
        ("ForAllValues:StringEquals", ["<absent>"], True),
        ("ForAnyValue:StringEquals", ["<absent>"], False),
    ],
)
def test_set_operators(operator: str, request_values: list[str], expected: bool) -> None:
    block = {operator: {"dynamodb:Attributes": ATTRIBUTES}}
    assert holds(block, **{"dynamodb:Attributes": request_values}) is expected


def test_saml_list_key_with_for_all_values() -> None:
    """reference_policies_iam-condition-keys.md: faculty or staff, but not student."""
    block = {"ForAllValues:StringLike": {"saml:edupersonaffiliation": ["faculty", "staff"]}}
    assert holds(block, **{"saml:edupersonaffiliation": ["faculty", "staff"]})
    assert not holds(block, **{"saml:edupersonaffiliation": ["staff", "student"]})


def test_absent_keys() -> None:
    """condition_operators.md, Important: an absent key is false, except for negated operators
    (true) and …IfExists (true); Null tests presence."""
    assert not holds({"StringEquals": {"saml:sub": "alice"}})
    assert holds({"StringNotLike": {"saml:sub": "bob*"}})
    assert holds({"StringEqualsIfExists": {"saml:sub": "alice"}})
    assert not holds({"StringEqualsIfExists": {"saml:sub": "alice"}}, **{"saml:sub": "bob"})
    assert holds({"Null": {"sts:SourceIdentity": "true"}})
    assert not holds({"Null": {"sts:SourceIdentity": "false"}})
    assert holds({"Null": {"sts:SourceIdentity": "false"}}, **{"sts:SourceIdentity": "alice"})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("repo:GitHubOrg/GitHubRepo:*", "repo:GitHubOrg/GitHubRepo:ref:refs/heads/main", True),
        ("repo:GitHubOrg/GitHubRepo:*", "repo:GitHubOrg/Other:ref:refs/heads/main", False),
        ("repo:githuborg/*", "repo:GitHubOrg/GitHubRepo:x", False),  # case sensitive
        ("user-?", "user-1", True),
        ("user-?", "user-12", False),
        ("a.b", "aXb", False),  # only * and ? are special
    ],
)
def test_string_like_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert holds({"StringLike": {"k": pattern}}, k=value) is expected
    assert holds({"StringNotLike": {"k": pattern}}, k=value) is not expected


def test_key_names_are_not_case_sensitive() -> None:
    """reference_policies_elements_condition.md: `aws:SourceIP` is `AWS:SourceIp`."""
    assert holds({"StringEquals": {"SAML:AUD": "https://b/acs"}}, **{"saml:aud": "https://b/acs"})


def test_equals_is_case_sensitive_and_ignore_case_is_not() -> None:
    assert not holds({"StringEquals": {"aws:username": "johndoe"}}, **{"aws:username": "JohnDoe"})
    assert holds(
        {"StringEqualsIgnoreCase": {"aws:username": "johndoe"}}, **{"aws:username": "JohnDoe"}
    )


def _github(**condition: Any) -> TrustPolicy:
    """id_roles_create_for-idp_oidc.md: the GitHub Actions trust policy."""
    return parse_trust_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": GITHUB},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": condition
                    or {
                        "StringEquals": {
                            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"
                        },
                        "StringLike": {
                            "token.actions.githubusercontent.com:sub": "repo:GitHubOrg/GitHubRepo:*"
                        },
                    },
                }
            ],
        }
    )


def test_github_trust_policy() -> None:
    policy = _github()
    good = ctx(
        **{
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:GitHubOrg/GitHubRepo:ref:refs/heads/x",
        }
    )
    assert policy.allows(GITHUB, "sts:AssumeRoleWithWebIdentity", good)
    assert policy.allows(GITHUB, "STS:assumerolewithwebidentity", good)  # actions ignore case
    assert not policy.allows(GITHUB, "sts:AssumeRoleWithSAML", good)
    assert not policy.allows(GITHUB.replace("012345678910", "111122223333"), "sts:*", good)
    fork = good | ctx(**{"token.actions.githubusercontent.com:sub": "repo:Evil/GitHubRepo:x"})
    assert not policy.allows(GITHUB, "sts:AssumeRoleWithWebIdentity", fork)
    assert policy.refused(GITHUB, ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"], good) == (
        "sts:TagSession"
    )


def test_eks_and_cognito_keys() -> None:
    """reference_policies_iam-condition-keys.md (EKS) and id_roles_create_for-idp_oidc.md
    (Cognito, with `ForAnyValue:StringLike` on the multivalued `amr`)."""
    eks = _github(
        StringEquals={
            f"{EKS_KEY}:aud": "sts.amazonaws.com",
            f"{EKS_KEY}:sub": "system:serviceaccount:default:assumer",
        }
    )
    context = ctx(
        **{
            f"{EKS_KEY}:aud": "sts.amazonaws.com",
            f"{EKS_KEY}:sub": "system:serviceaccount:default:assumer",
        }
    )
    assert eks.allows(GITHUB, "sts:AssumeRoleWithWebIdentity", context)
    cognito = _github(
        StringEquals={"cognito-identity.amazonaws.com:aud": "us-east-2:pool"},
        **{"ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}},
    )
    signed_in = ctx(
        **{
            "cognito-identity.amazonaws.com:aud": "us-east-2:pool",
            "cognito-identity.amazonaws.com:amr": ["authenticated", "accounts.google.com"],
        }
    )
    assert not cognito.allows(GITHUB, "sts:AssumeRoleWithWebIdentity", signed_in)
    guest = signed_in | ctx(**{"cognito-identity.amazonaws.com:amr": ["unauthenticated"]})
    assert cognito.allows(GITHUB, "sts:AssumeRoleWithWebIdentity", guest)


def test_explicit_deny_wins_and_the_default_is_deny() -> None:
    """reference_policies_evaluation-logic.md."""
    allow = {
        "Effect": "Allow",
        "Principal": {"Federated": SAML_PROVIDER},
        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
        "Condition": {"StringEquals": {"SAML:aud": "https://broker.example.com/saml/acs"}},
    }
    deny = {
        "Effect": "Deny",
        "Principal": {"Federated": SAML_PROVIDER},
        "NotAction": "sts:AssumeRoleWithSAML",
        "Condition": {"StringLike": {"saml:sub": "contractor-*"}},
    }
    policy = parse_trust_policy({"Version": "2012-10-17", "Statement": [allow, deny]})
    aud = {"saml:aud": ("https://broker.example.com/saml/acs",)}
    employee = aud | {"saml:sub": ("alice",)}
    contractor = aud | {"saml:sub": ("contractor-bob",)}
    assert policy.allows(SAML_PROVIDER, "sts:AssumeRoleWithSAML", contractor)
    assert policy.allows(SAML_PROVIDER, "sts:TagSession", employee)
    assert not policy.allows(SAML_PROVIDER, "sts:TagSession", contractor)  # Deny wins
    assert not policy.allows(SAML_PROVIDER, "sts:SetSourceIdentity", employee)  # nothing allows
    assert not policy.allows(SAML_PROVIDER, "sts:AssumeRoleWithSAML", {"saml:sub": ("alice",)})


def _statement(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": SAML_PROVIDER},
        "Action": "sts:AssumeRoleWithSAML",
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"Statement": [_statement(NotPrincipal={"AWS": "x"})]}, "NotPrincipal"),
        ({"Statement": [_statement(Resource="*")]}, "Resource"),
        ({"Statement": [_statement(Principal="*")]}, '"*"'),
        ({"Statement": [_statement(Principal={"Bogus": "x"})]}, "principal type"),
        ({"Statement": [_statement(Principal=None)]}, "Principal"),
        ({"Statement": [_statement(Effect="Permit")]}, "Effect"),
        ({"Statement": [_statement(Action=None)]}, "Action"),
        ({"Statement": [_statement(NotAction="sts:*")]}, "exactly one"),
        ({"Statement": [_statement(Condition={"NumericLessThan": {"k": "1"}})]}, "operator"),
        ({"Statement": [_statement(Condition={"ForSomeValues:StringEquals": {"k": "v"}})]}, "set"),
        ({"Statement": [_statement(Condition={"StringEquals": {"k": "${saml:sub}"}})]}, "variable"),
        ({"Statement": [_statement(Condition={"Null": {"k": "maybe"}})]}, "true or false"),
        ({"Statement": [_statement(Condition={"StringEquals": {"k": []}})]}, "no values"),
        ({"Statement": []}, "at least one"),
        ({"Version": "2020-01-01", "Statement": [_statement()]}, "Version"),
        ({"Statement": [_statement(Sid="x" * 2100)]}, "2048"),
    ],
)
def test_documents_iam_refuses(document: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("*", r"\*").replace("$", r"\$")):
        parse_trust_policy(document)


def test_json_text_and_a_private_copy() -> None:
    document: dict[str, Any] = {"Version": "2012-10-17", "Statement": _statement()}
    policy = parse_trust_policy(json.dumps(document))
    assert policy.allows(SAML_PROVIDER, "sts:AssumeRoleWithSAML", {})
    with pytest.raises(PolicyError, match="Syntax"):
        parse_trust_policy("{not json")
    copied = parse_trust_policy(document)
    document["Statement"]["Effect"] = "Deny"
    assert copied.allows(SAML_PROVIDER, "sts:AssumeRoleWithSAML", {})
