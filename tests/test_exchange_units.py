"""The pure parts of the exchange: role choice, session names, durations, the retry budget."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import pytest

from broker.aws.arn import clamp_duration, session_name
from broker.aws.sts import RetryBudget
from broker.errors import InvalidParameter, NoRoleGranted, RoleNotGranted, RoleSelectionRequired
from broker.exchange import choose, role_summary
from broker.http.readers import parse_duration
from broker.identity import Identity, RoleGrant, WebIdentityToken
from broker.mapping import Decision, Refusal
from broker.oidc.naming import oidc_session_name

PROD = "111122223333"
STAGING = "444455556666"
STS_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)


def grant(name: str, account: str = PROD, account_name: str | None = "Production") -> RoleGrant:
    return RoleGrant(
        name=name,
        arn=f"arn:aws:iam::{account}:role/{name}",
        account_id=account,
        account_name=account_name,
        max_session_seconds=3600,
        rule="r",
    )


def decision(*grants: RoleGrant, refused: tuple[Refusal, ...] = ()) -> Decision:
    return Decision(grants=grants, trace=(), refused=refused)


def identity(
    attributes: dict[str, Any], subject: str = "repo:org/app:ref:refs/heads/main"
) -> Identity:
    return Identity(
        protocol="oidc",
        idp="gh",
        issuer="https://token.actions.githubusercontent.com",
        subject=subject,
        attributes=attributes,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        proof=WebIdentityToken("x", "s"),
    )


# --- choose ------------------------------------------------------------------------------


def test_choose_nothing_granted() -> None:
    denied = Refusal(f"arn:aws:iam::{PROD}:role/deploy", "denied by rule no-forks")
    with pytest.raises(NoRoleGranted) as info:
        choose(decision(refused=(denied,)), None)
    assert info.value.status == 403
    assert info.value.extra == {
        "refused": [{"role": denied.arn, "reason": "denied by rule no-forks"}]
    }


def test_choose_nothing_granted_even_when_a_role_is_asked_for() -> None:
    with pytest.raises(NoRoleGranted):
        choose(decision(), "deploy")


def test_choose_the_only_grant() -> None:
    only = grant("deploy")
    assert choose(decision(only), None) is only
    assert choose(decision(only), "") is only


@pytest.mark.parametrize(
    "wanted", ["deploy", f"arn:aws:iam::{PROD}:role/deploy"], ids=["name", "arn"]
)
def test_choose_by_name_or_arn(wanted: str) -> None:
    chosen = grant("deploy")
    assert choose(decision(grant("admin"), chosen, grant("x", STAGING)), wanted) is chosen


@pytest.mark.parametrize(
    "wanted",
    [
        "nope",
        f"arn:aws:iam::{STAGING}:role/deploy",
        "DEPLOY",
        "deplo",
        "arn:aws:iam::*:role/deploy",
    ],
)
def test_choose_role_not_granted(wanted: str) -> None:
    with pytest.raises(RoleNotGranted) as info:
        choose(decision(grant("deploy"), grant("admin")), wanted)
    assert info.value.detail == f"The role {wanted!r} is not granted to this identity."
    assert info.value.status == 403


def test_choose_denied_role_by_arn_gives_the_reason() -> None:
    denied = f"arn:aws:iam::{PROD}:role/deploy"
    d = decision(grant("readonly"), refused=(Refusal(denied, "denied by rule no-forks"),))
    with pytest.raises(RoleNotGranted) as info:
        choose(d, denied)
    assert info.value.detail == (
        f"The role {denied!r} is not granted to this identity: denied by rule no-forks."
    )


def test_choose_denied_role_by_name_gives_the_reason() -> None:
    denied = f"arn:aws:iam::{PROD}:role/deploy"
    d = decision(grant("readonly"), refused=(Refusal(denied, "denied by rule no-forks"),))
    with pytest.raises(RoleNotGranted, match="denied by rule no-forks"):
        choose(d, "deploy", {"deploy": denied})


def test_choose_several_and_none_chosen() -> None:
    grants = (grant("admin"), grant("deploy", STAGING, "Staging"))
    with pytest.raises(RoleSelectionRequired) as info:
        choose(decision(*grants), None)
    assert info.value.status == 409
    assert info.value.extra["roles"] == [
        {
            "name": "admin",
            "arn": f"arn:aws:iam::{PROD}:role/admin",
            "account_id": PROD,
            "account_name": "Production",
            "rule": "r",
        },
        {
            "name": "deploy",
            "arn": f"arn:aws:iam::{STAGING}:role/deploy",
            "account_id": STAGING,
            "account_name": "Staging",
            "rule": "r",
        },
    ]
    assert info.value.extra["roles"] == [role_summary(g) for g in grants]


def test_choose_ambiguous_name_asks_which() -> None:
    d = decision(grant("Admin", PROD, "Production"), grant("Admin", STAGING, "Staging"))
    with pytest.raises(RoleSelectionRequired):
        choose(d, "Admin")


# --- session names -----------------------------------------------------------------------


@dataclass(frozen=True)
class NameCase:
    name: str
    template: str | None
    claims: dict[str, Any]
    expected: str
    subject: str = "repo:org/app:ref:refs/heads/main"


NAME_CASES = [
    NameCase(
        "template",
        "gh-{repository}-{run_id}",
        {"repository": "org/app", "run_id": 42},
        "gh-org-app-42",
    ),
    NameCase("template-nested", "{ctx.user}", {"ctx": {"user": "bob"}}, "bob"),
    NameCase("template-bool", "ci-{push}", {"push": True}, "ci-True"),
    NameCase("template-literal-only", "static-name", {}, "static-name"),
    NameCase("missing-claim-email", "gh-{repository}", {"email": "a@example.com"}, "a@example.com"),
    NameCase("missing-claim-sub", "gh-{repository}", {}, "repo-org-app-ref-refs-heads-main"),
    NameCase("one-of-two-missing", "{a}-{b}", {"a": "x", "email": "e@x.io"}, "e@x.io"),
    NameCase("dict-claim-is-missing", "{ctx}", {"ctx": {"a": 1}, "email": "e@x.io"}, "e@x.io"),
    NameCase("list-claim-is-missing", "{groups}", {"groups": ["a"], "email": "e@x.io"}, "e@x.io"),
    NameCase("empty-render-falls-back", "{x}", {"x": "", "email": "e@x.io"}, "e@x.io"),
    NameCase("no-template-email", None, {"email": "alice@example.com"}, "alice@example.com"),
    NameCase("empty-template-email", "", {"email": "alice@example.com"}, "alice@example.com"),
    NameCase("no-template-sub", None, {}, "repo-org-app-ref-refs-heads-main"),
    NameCase("email-not-string", None, {"email": ["a@b"]}, "sub-1", subject="sub-1"),
    NameCase("email-empty", None, {"email": ""}, "sub-1", subject="sub-1"),
    NameCase(
        "sub-sanitised",
        None,
        {},
        "system-serviceaccount-ns-sa",
        subject="system:serviceaccount:ns:sa",
    ),
    NameCase("sub-short-padded", None, {}, "x-", subject="x"),
    NameCase("sub-empty", None, {}, "--", subject=""),
    NameCase("template-sanitised", "{name}", {"name": "Zoë Smith / ops"}, "Zo--Smith---ops"),
    NameCase("template-long", "{name}", {"name": "n" * 100}, "n" * 64),
    NameCase("template-one-char", "{name}", {"name": "n"}, "n-"),
]


@pytest.mark.parametrize("case", NAME_CASES, ids=attrgetter("name"))
def test_oidc_session_name(case: NameCase) -> None:
    result = oidc_session_name(case.subject, case.claims, case.template)
    assert result == case.expected
    assert STS_SESSION_NAME.fullmatch(result)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("a+b=c,d.e@f-g_h", "a+b=c,d.e@f-g_h"),
        ("has space", "has-space"),
        ("tab\tnew\nline", "tab-new-line"),
        ("slash/colon:star*", "slash-colon-star-"),
        ("ünïcode", "-n-code"),
        ("日本", "--"),
        ("a" * 64, "a" * 64),
        ("a" * 65, "a" * 64),
        ("ab" * 100, "ab" * 32),
        ("a", "a-"),
        ("", "--"),
        ("é", "--"),
    ],
)
def test_session_name(raw: str, expected: str) -> None:
    assert session_name(raw) == expected
    assert STS_SESSION_NAME.fullmatch(session_name(raw))


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("900", 900),
        (900, 900),
        ("3600", 3600),
        ("43200", 43200),
        (" 1800 ", 1800),
    ],
)
def test_parse_duration(raw: str | int | None, expected: int | None) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("899", "between 900 and 43200"),
        (899, "between 900 and 43200"),
        ("43201", "between 900 and 43200"),
        ("0", "between 900 and 43200"),
        ("-900", "between 900 and 43200"),
        ("abc", "whole number"),
        ("1.5", "whole number"),
        ("1e3", "whole number"),
        ("0x384", "whole number"),
    ],
)
def test_parse_duration_refused(raw: str | int, says: str) -> None:
    with pytest.raises(InvalidParameter, match=says) as info:
        parse_duration(raw)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("requested", "role_max", "expected"),
    [
        (None, 3600, 3600),
        (0, 3600, 3600),
        (1800, 3600, 1800),
        (7200, 3600, 3600),
        (3600, 3600, 3600),
        (100, 3600, 900),
        (900, 3600, 900),
        (None, 43200, 43200),
        (50000, 43200, 43200),
        (None, 99999, 43200),
        (50000, 99999, 43200),
        (None, 100, 900),
        (2000, 100, 900),
    ],
)
def test_clamp_duration(requested: int | None, role_max: int, expected: int) -> None:
    assert clamp_duration(requested, role_max) == expected


# --- retry budget ------------------------------------------------------------------------


def test_retry_budget_spends_until_empty() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, refund=1)
    assert [budget.spend() for _ in range(5)] == [True, True, True, True, False]


def test_retry_budget_refunds_on_success() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, refund=1)
    assert budget.spend()
    assert budget.spend()
    assert not budget.spend()
    for _ in range(4):
        budget.succeed()
    assert not budget.spend(), "4 refunded tokens are less than one retry"
    budget.succeed()
    assert budget.spend()
    assert not budget.spend()


def test_retry_budget_refund_is_capped() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, refund=1)
    for _ in range(100):
        budget.succeed()
    assert [budget.spend() for _ in range(3)] == [True, True, False]


def test_retry_budget_defaults() -> None:
    budget = RetryBudget()
    assert sum(budget.spend() for _ in range(30)) == 20
