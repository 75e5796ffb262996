"""The rule language's `when` clause: each operator, combinations, paths, bindings, parse errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import pytest

from broker import matchers
from broker.matchers import Bindings, Outcome

SAML_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"


def evaluate(when: Any, attributes: dict[str, Any]) -> Outcome:
    return matchers.parse(when).evaluate(attributes)


@dataclass(frozen=True)
class Case:
    name: str
    when: Any
    attributes: dict[str, Any]
    matched: bool
    # None: don't check. Otherwise the exact bindings of the outcome.
    bindings: tuple[Bindings, ...] | None = None


OPERATOR_CASES = [
    # equals
    Case("equals-match", {"claim": "repo", "equals": "org/app"}, {"repo": "org/app"}, True, ({},)),
    Case("equals-differs", {"claim": "repo", "equals": "org/app"}, {"repo": "org/ap"}, False, ()),
    Case("equals-case-differs", {"claim": "repo", "equals": "Org/App"}, {"repo": "org/app"}, False),
    Case("equals-any-list-value", {"claim": "g", "equals": "b"}, {"g": ["a", "b"]}, True),
    Case("equals-absent-claim", {"claim": "repo", "equals": "x"}, {}, False, ()),
    Case("equals-number", {"claim": "n", "equals": 3}, {"n": 3}, True),
    # Numbers compare by value with numeric strings (broker.claims): "3" from YAML is 3.
    Case("equals-number-vs-string", {"claim": "n", "equals": "3"}, {"n": 3}, True),
    Case("equals-number-vs-other-string", {"claim": "n", "equals": "03"}, {"n": 3}, False),
    Case("equals-bool", {"claim": "v", "equals": True}, {"v": True}, True),
    Case("equals-bool-false", {"claim": "v", "equals": True}, {"v": False}, False),
    # glob: fnmatch over the whole value
    Case("glob-star", {"claim": "ref", "glob": "refs/heads/*"}, {"ref": "refs/heads/main"}, True),
    Case(
        "glob-whole-value", {"claim": "ref", "glob": "heads/*"}, {"ref": "refs/heads/main"}, False
    ),
    Case("glob-question", {"claim": "env", "glob": "prod-?"}, {"env": "prod-1"}, True),
    Case("glob-question-one-char", {"claim": "env", "glob": "prod-?"}, {"env": "prod-12"}, False),
    Case("glob-class", {"claim": "env", "glob": "prod-[ab]"}, {"env": "prod-c"}, False),
    Case("glob-case-differs", {"claim": "ref", "glob": "REFS/*"}, {"ref": "refs/x"}, False),
    Case("glob-no-newline-trick", {"claim": "ref", "glob": "main"}, {"ref": "main\n"}, False),
    # regex: anchored at both ends
    Case("regex-whole", {"claim": "role", "regex": "admin"}, {"role": "admin"}, True),
    Case("regex-not-substring", {"claim": "role", "regex": "admin"}, {"role": "xadminx"}, False),
    Case("regex-not-prefix", {"claim": "role", "regex": "admin"}, {"role": "admins"}, False),
    Case("regex-not-suffix", {"claim": "role", "regex": "admin"}, {"role": "sysadmin"}, False),
    Case("regex-alternation-anchored", {"claim": "r", "regex": "a|b"}, {"r": "ab"}, False),
    Case("regex-alternation-match", {"claim": "r", "regex": "a|b"}, {"r": "b"}, True),
    Case("regex-trailing-newline", {"claim": "r", "regex": "admin"}, {"r": "admin\n"}, False),
    Case("regex-case-differs", {"claim": "r", "regex": "admin"}, {"r": "Admin"}, False),
    # in
    Case("in-match", {"claim": "ev", "in": ["push", "tag"]}, {"ev": "push"}, True),
    Case("in-no-match", {"claim": "ev", "in": ["push", "tag"]}, {"ev": "pull_request"}, False),
    Case("in-empty-list", {"claim": "ev", "in": []}, {"ev": "push"}, False),
    Case("in-any-list-value", {"claim": "g", "in": ["x", "b"]}, {"g": ["a", "b"]}, True),
    Case("in-numbers", {"claim": "n", "in": [1, 2]}, {"n": 2}, True),
    # contains: a scalar, or a list meaning every one of them
    Case("contains-scalar", {"claim": "g", "contains": "admins"}, {"g": ["dev", "admins"]}, True),
    Case("contains-scalar-missing", {"claim": "g", "contains": "admins"}, {"g": ["dev"]}, False),
    Case("contains-scalar-claim", {"claim": "g", "contains": "admins"}, {"g": "admins"}, True),
    Case("contains-list-all", {"claim": "g", "contains": ["a", "b"]}, {"g": ["b", "c", "a"]}, True),
    Case("contains-list-one-missing", {"claim": "g", "contains": ["a", "b"]}, {"g": ["a"]}, False),
    Case("contains-not-substring", {"claim": "g", "contains": "admin"}, {"g": ["admins"]}, False),
    Case("contains-absent", {"claim": "g", "contains": "a"}, {}, False),
    # exists
    Case("exists-true-present", {"claim": "email", "exists": True}, {"email": "a@b"}, True, ({},)),
    Case("exists-true-absent", {"claim": "email", "exists": True}, {}, False, ()),
    Case("exists-false-absent", {"claim": "email", "exists": False}, {}, True, ({},)),
    Case("exists-false-present", {"claim": "email", "exists": False}, {"email": "a"}, False, ()),
    Case("exists-empty-list-is-present", {"claim": "g", "exists": True}, {"g": []}, True),
    Case("exists-nested", {"claim": "a.b", "exists": True}, {"a": {"b": 0}}, True),
    Case("exists-nested-absent", {"claim": "a.c", "exists": True}, {"a": {"b": 0}}, False),
]

EACH_CASES = [
    Case("each-any-one", {"claim": "g", "glob": "team-*"}, {"g": ["x", "team-a"]}, True),
    Case("each-any-none", {"claim": "g", "glob": "team-*", "each": "any"}, {"g": ["x"]}, False),
    Case("each-any-empty", {"claim": "g", "glob": "*", "each": "any"}, {"g": []}, False),
    Case(
        "each-all-all",
        {"claim": "g", "glob": "team-*", "each": "all"},
        {"g": ["team-a", "team-b"]},
        True,
    ),
    Case(
        "each-all-one-not",
        {"claim": "g", "glob": "team-*", "each": "all"},
        {"g": ["team-a", "x"]},
        False,
    ),
    Case("each-all-empty-list", {"claim": "g", "glob": "*", "each": "all"}, {"g": []}, False),
    Case("each-all-scalar", {"claim": "g", "equals": "a", "each": "all"}, {"g": "a"}, True),
    Case(
        "each-none-none",
        {"claim": "g", "glob": "adm*", "each": "none"},
        {"g": ["dev", "ops"]},
        True,
        ({},),
    ),
    Case(
        "each-none-one",
        {"claim": "g", "glob": "adm*", "each": "none"},
        {"g": ["dev", "admin"]},
        False,
        (),
    ),
    Case("each-none-empty-list", {"claim": "g", "glob": "adm*", "each": "none"}, {"g": []}, True),
    Case("each-none-absent-claim", {"claim": "g", "glob": "adm*", "each": "none"}, {}, False),
    Case(
        "each-all-in", {"claim": "g", "in": ["a", "b"], "each": "all"}, {"g": ["a", "b", "a"]}, True
    ),
    Case(
        "each-all-in-one-out",
        {"claim": "g", "in": ["a", "b"], "each": "all"},
        {"g": ["a", "c"]},
        False,
    ),
    Case(
        "each-none-regex",
        {"claim": "g", "regex": "admin", "each": "none"},
        {"g": ["xadminx"]},
        True,
    ),
]

PATH_CASES = [
    Case("nested-dotted", {"claim": "a.b.c", "equals": "v"}, {"a": {"b": {"c": "v"}}}, True),
    Case(
        "nested-missing-middle", {"claim": "a.x.c", "equals": "v"}, {"a": {"b": {"c": "v"}}}, False
    ),
    Case("nested-through-list", {"claim": "a.b", "equals": "v"}, {"a": [{"b": "v"}]}, False),
    Case("nested-through-scalar", {"claim": "a.b", "equals": "v"}, {"a": "v"}, False),
    Case(
        "nested-list-leaf",
        {"claim": "ctx.groups", "contains": "g1"},
        {"ctx": {"groups": ["g1"]}},
        True,
    ),
    Case(
        "exact-key-with-dots",
        {"claim": SAML_GROUPS, "contains": "admins"},
        {SAML_GROUPS: ["admins"]},
        True,
    ),
    Case(
        "exact-key-wins-over-path",
        {"claim": "a.b", "equals": "exact"},
        {"a.b": "exact", "a": {"b": "nested"}},
        True,
    ),
    Case(
        "exact-key-shadows-path",
        {"claim": "a.b", "equals": "nested"},
        {"a.b": "exact", "a": {"b": "nested"}},
        False,
    ),
    Case(
        "url-claim-not-split",
        {"claim": "https://aws.amazon.com/SAML/Attributes/RoleSessionName", "equals": "alice"},
        {"https://aws.amazon.com/SAML/Attributes/RoleSessionName": ["alice"]},
        True,
    ),
]

CASE_INSENSITIVE_CASES = [
    Case(
        "ci-equals",
        {"claim": "o", "equals": "Example-Org", "case_sensitive": False},
        {"o": "example-ORG"},
        True,
    ),
    Case(
        "ci-equals-differs",
        {"claim": "o", "equals": "Example", "case_sensitive": False},
        {"o": "Exampl"},
        False,
    ),
    Case(
        "ci-glob",
        {"claim": "r", "glob": "REFS/Heads/*", "case_sensitive": False},
        {"r": "refs/heads/Main"},
        True,
    ),
    Case(
        "ci-regex",
        {"claim": "r", "regex": "ADMIN-[a-z]+", "case_sensitive": False},
        {"r": "admin-OPS"},
        True,
    ),
    Case(
        "ci-regex-still-anchored",
        {"claim": "r", "regex": "ADMIN", "case_sensitive": False},
        {"r": "xadmin"},
        False,
    ),
    Case(
        "ci-in", {"claim": "e", "in": ["Push", "TAG"], "case_sensitive": False}, {"e": "tag"}, True
    ),
    Case(
        "ci-contains",
        {"claim": "g", "contains": ["Admins", "DEV"], "case_sensitive": False},
        {"g": ["admins", "dev"]},
        True,
    ),
    Case(
        "ci-contains-missing",
        {"claim": "g", "contains": ["Admins", "ops"], "case_sensitive": False},
        {"g": ["admins"]},
        False,
    ),
    Case(
        "ci-casefold",
        {"claim": "n", "equals": "STRASSE", "case_sensitive": False},
        {"n": "straße"},
        True,
    ),
    Case("ci-default-is-sensitive-in", {"claim": "e", "in": ["Push"]}, {"e": "push"}, False),
    Case(
        "ci-default-is-sensitive-contains",
        {"claim": "g", "contains": "Admins"},
        {"g": ["admins"]},
        False,
    ),
    Case(
        "ci-numbers-untouched", {"claim": "n", "in": [1], "case_sensitive": False}, {"n": 1}, True
    ),
]

COMBINATION_CASES = [
    Case("not-inverts-match", {"not": {"claim": "a", "equals": "x"}}, {"a": "x"}, False, ()),
    Case("not-inverts-no-match", {"not": {"claim": "a", "equals": "x"}}, {"a": "y"}, True, ({},)),
    Case("not-absent", {"not": {"claim": "a", "equals": "x"}}, {}, True),
    Case("not-not", {"not": {"not": {"claim": "a", "equals": "x"}}}, {"a": "x"}, True),
    Case(
        "all-both",
        {"all": [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}]},
        {"a": "1", "b": "2"},
        True,
    ),
    Case(
        "all-one-fails",
        {"all": [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}]},
        {"a": "1", "b": "3"},
        False,
        (),
    ),
    Case(
        "any-one",
        {"any": [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}]},
        {"a": "0", "b": "2"},
        True,
    ),
    Case(
        "any-none",
        {"any": [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}]},
        {"a": "0", "b": "0"},
        False,
        (),
    ),
    Case(
        "none-none-match",
        {"none": [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}]},
        {"a": "0"},
        True,
        ({},),
    ),
    Case(
        "none-one-matches",
        {"none": [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}]},
        {"b": "2"},
        False,
        (),
    ),
    Case(
        "list-is-all",
        [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}],
        {"a": "1", "b": "2"},
        True,
    ),
    Case(
        "list-is-all-one-fails",
        [{"claim": "a", "equals": "1"}, {"claim": "b", "equals": "2"}],
        {"a": "1"},
        False,
    ),
    Case(
        "nested-combination",
        {
            "all": [
                {"claim": "org", "equals": "o"},
                {
                    "any": [
                        {"claim": "ref", "glob": "refs/tags/*"},
                        {"claim": "env", "equals": "prod"},
                    ]
                },
                {"not": {"claim": "event", "in": ["pull_request"]}},
            ]
        },
        {"org": "o", "env": "prod", "event": "push"},
        True,
    ),
    Case(
        "nested-combination-denied-by-not",
        {
            "all": [
                {"claim": "org", "equals": "o"},
                {"not": {"claim": "event", "in": ["pull_request"]}},
            ]
        },
        {"org": "o", "event": "pull_request"},
        False,
    ),
]

BINDING_CASES = [
    Case(
        "regex-named-groups",
        {"claim": "g", "regex": r"aws-(?P<account>\d{12})-(?P<role>\w+)"},
        {"g": "aws-111122223333-Admin"},
        True,
        ({"account": "111122223333", "role": "Admin"},),
    ),
    Case(
        "regex-several-values-several-bindings",
        {"claim": "g", "regex": r"aws-(?P<account>\d{12})-(?P<role>\w+)"},
        {"g": ["aws-111122223333-Admin", "unrelated", "aws-444455556666-ReadOnly"]},
        True,
        (
            {"account": "111122223333", "role": "Admin"},
            {"account": "444455556666", "role": "ReadOnly"},
        ),
    ),
    Case(
        "regex-unnamed-groups-bind-nothing",
        {"claim": "g", "regex": r"(a)(b)"},
        {"g": "ab"},
        True,
        ({},),
    ),
    Case(
        "regex-unmatched-optional-group-left-out",
        {"claim": "g", "regex": r"(?P<a>x)(?P<b>y)?"},
        {"g": "x"},
        True,
        ({"a": "x"},),
    ),
    Case(
        "all-combines-bindings",
        {"all": [{"claim": "a", "regex": "(?P<x>.+)"}, {"claim": "b", "regex": "(?P<y>.+)"}]},
        {"a": "1", "b": "2"},
        True,
        ({"x": "1", "y": "2"},),
    ),
    Case(
        "all-cross-product",
        {"all": [{"claim": "a", "regex": "(?P<x>.+)"}, {"claim": "b", "regex": "(?P<y>.+)"}]},
        {"a": ["1", "2"], "b": ["3"]},
        True,
        ({"x": "1", "y": "3"}, {"x": "2", "y": "3"}),
    ),
    Case(
        "any-collects-alternatives",
        {"any": [{"claim": "a", "regex": "(?P<x>.+)"}, {"claim": "b", "regex": "(?P<x>.+)"}]},
        {"a": "1", "b": "2"},
        True,
        ({"x": "1"}, {"x": "2"}),
    ),
    Case("equals-binds-empty", {"claim": "a", "equals": "1"}, {"a": "1"}, True, ({},)),
]

NON_STRING_CASES = [
    Case("number-equals-numeric-string", {"claim": "n", "equals": "1"}, {"n": 1}, True),
    Case("number-equals-word", {"claim": "n", "equals": "one"}, {"n": 1}, False),
    Case("number-glob", {"claim": "n", "glob": "12*"}, {"n": 1234}, True),
    Case("number-regex", {"claim": "n", "regex": r"\d+"}, {"n": 42}, True),
    Case("float-regex", {"claim": "n", "regex": r"1\.5"}, {"n": 1.5}, True),
    Case("bool-regex-never", {"claim": "b", "regex": "True"}, {"b": True}, False),
    Case("bool-glob-never", {"claim": "b", "glob": "*"}, {"b": False}, False),
    Case("none-equals", {"claim": "x", "equals": "None"}, {"x": None}, False),
    Case("none-regex", {"claim": "x", "regex": ".*"}, {"x": None}, False),
    Case("none-glob", {"claim": "x", "glob": "*"}, {"x": None}, False),
    Case("none-in", {"claim": "x", "in": ["a"]}, {"x": None}, False),
    Case("none-contains", {"claim": "x", "contains": "a"}, {"x": None}, False),
    Case("none-exists", {"claim": "x", "exists": True}, {"x": None}, True),
    Case("dict-equals", {"claim": "x", "equals": "a"}, {"x": {"a": 1}}, False),
    Case("dict-glob", {"claim": "x", "glob": "*"}, {"x": {"a": 1}}, False),
    Case("dict-regex", {"claim": "x", "regex": ".*"}, {"x": {"a": 1}}, False),
    Case(
        "dict-ci-equals",
        {"claim": "x", "equals": "a", "case_sensitive": False},
        {"x": {"a": 1}},
        False,
    ),
    Case(
        "mixed-list-glob",
        {"claim": "g", "glob": "a*"},
        {"g": [None, 3, True, {"k": 1}, "ab"]},
        True,
    ),
    Case(
        "mixed-list-ci-contains",
        {"claim": "g", "contains": "A", "case_sensitive": False},
        {"g": ["a", None, 3]},
        True,
    ),
    Case("nested-list-glob", {"claim": "g", "glob": "*"}, {"g": [["a"]]}, False),
]


@pytest.mark.parametrize(
    "case",
    OPERATOR_CASES
    + EACH_CASES
    + PATH_CASES
    + CASE_INSENSITIVE_CASES
    + COMBINATION_CASES
    + BINDING_CASES
    + NON_STRING_CASES,
    ids=attrgetter("name"),
)
def test_evaluate(case: Case) -> None:
    outcome = evaluate(case.when, case.attributes)
    assert outcome.matched is case.matched, outcome.reason
    assert outcome.reason
    if case.bindings is not None:
        assert outcome.bindings == case.bindings
    if not outcome.matched:
        assert outcome.bindings == ()
    else:
        assert outcome.bindings, "a match carries at least one (possibly empty) binding"


def test_case_names_are_unique() -> None:
    cases = (
        OPERATOR_CASES
        + EACH_CASES
        + PATH_CASES
        + CASE_INSENSITIVE_CASES
        + COMBINATION_CASES
        + BINDING_CASES
        + NON_STRING_CASES
    )
    names = [c.name for c in cases]
    assert len(names) == len(set(names))


# Claims that are objects or nested lists must make `in` / `contains` fail, not raise.
UNHASHABLE_CASES = [
    Case("in-dict-claim", {"claim": "x", "in": ["a"]}, {"x": {"a": 1}}, False),
    Case("in-nested-list-claim", {"claim": "x", "in": ["a"]}, {"x": [["a"]]}, False),
    Case("contains-dict-claim", {"claim": "x", "contains": "a"}, {"x": {"a": 1}}, False),
    Case("contains-list-of-dicts", {"claim": "x", "contains": "a"}, {"x": [{"a": 1}, "b"]}, False),
    Case(
        "contains-dict-among-values", {"claim": "x", "contains": "b"}, {"x": [{"a": 1}, "b"]}, True
    ),
]


@pytest.mark.parametrize("case", UNHASHABLE_CASES, ids=attrgetter("name"))
def test_unhashable_claim_values_do_not_crash(case: Case) -> None:
    outcome = evaluate(case.when, case.attributes)
    assert outcome.matched is case.matched


BOOL_INT_CASES = [
    Case("equals-1-vs-true", {"claim": "x", "equals": 1}, {"x": True}, False),
    Case("equals-true-vs-1", {"claim": "x", "equals": True}, {"x": 1}, False),
    Case("equals-false-vs-0", {"claim": "x", "equals": False}, {"x": 0}, False),
    Case("in-1-vs-true", {"claim": "x", "in": [1]}, {"x": True}, False),
    Case("contains-1-vs-true", {"claim": "x", "contains": 1}, {"x": [True]}, False),
]


@pytest.mark.parametrize("case", BOOL_INT_CASES, ids=attrgetter("name"))
def test_booleans_are_not_numbers(case: Case) -> None:
    assert evaluate(case.when, case.attributes).matched is case.matched


def test_reason_names_the_claim_and_values() -> None:
    ok = evaluate({"claim": "repo", "equals": "org/app"}, {"repo": "org/app"})
    assert "repo" in ok.reason
    assert "org/app" in ok.reason
    absent = evaluate({"claim": "repo", "equals": "org/app"}, {})
    assert absent.reason == "repo is absent"
    lacks = evaluate({"claim": "g", "contains": ["a", "b"]}, {"g": ["a"]})
    assert "g lacks [b]" in lacks.reason


def test_reason_for_long_lists_is_truncated() -> None:
    outcome = evaluate({"claim": "g", "equals": "z"}, {"g": [str(i) for i in range(20)]})
    assert "+15" in outcome.reason
    assert "19" not in outcome.reason


def test_many_bindings_are_capped() -> None:
    many = [f"v{i}" for i in range(40)]
    outcome = evaluate(
        {"all": [{"claim": "a", "regex": "(?P<x>.+)"}, {"claim": "b", "regex": "(?P<y>.+)"}]},
        {"a": many, "b": many},
    )
    assert outcome.matched
    assert len(outcome.bindings) == 256


@dataclass(frozen=True)
class GroupCase:
    name: str
    when: Any
    groups: set[str]


GROUP_CASES = [
    GroupCase("regex", {"claim": "g", "regex": "(?P<a>x)(?P<b>y)"}, {"a", "b"}),
    GroupCase("glob-binds-nothing", {"claim": "g", "glob": "*"}, set()),
    GroupCase(
        "all-unions",
        {"all": [{"claim": "g", "regex": "(?P<a>x)"}, {"claim": "h", "regex": "(?P<b>x)"}]},
        {"a", "b"},
    ),
    GroupCase(
        "any-intersects",
        {"any": [{"claim": "g", "regex": "(?P<a>x)(?P<b>y)"}, {"claim": "h", "regex": "(?P<a>x)"}]},
        {"a"},
    ),
    GroupCase("not-binds-nothing", {"not": {"claim": "g", "regex": "(?P<a>x)"}}, set()),
    GroupCase("none-binds-nothing", {"none": [{"claim": "g", "regex": "(?P<a>x)"}]}, set()),
]


@pytest.mark.parametrize("case", GROUP_CASES, ids=attrgetter("name"))
def test_group_names(case: GroupCase) -> None:
    assert matchers.group_names(matchers.parse(case.when)) == case.groups


@dataclass(frozen=True)
class ParseError:
    name: str
    when: Any
    # Substrings the message must contain: where the problem is, and what it is.
    says: tuple[str, ...]


PARSE_ERRORS = [
    ParseError("not-a-mapping", "repo", ("when: expected a mapping",)),
    ParseError("unknown-key", {"claim": "a", "equal": "x"}, ("when: unknown key(s) ['equal']",)),
    ParseError(
        "unknown-key-nested",
        {"any": [{"claim": "a", "equals": "x", "eachh": "all"}]},
        ("when.any[0]", "eachh"),
    ),
    ParseError(
        "two-ops",
        {"claim": "a", "equals": "x", "glob": "y"},
        ("exactly one of", "'equals', 'glob'"),
    ),
    ParseError("no-op", {"claim": "a"}, ("exactly one of", "got none")),
    ParseError("no-claim", {"equals": "x"}, ("when.claim: required",)),
    ParseError("empty-claim", {"claim": "", "equals": "x"}, ("when.claim: required",)),
    ParseError("claim-not-string", {"claim": 3, "equals": "x"}, ("when.claim",)),
    ParseError(
        "bad-regex",
        {"claim": "a", "regex": "(unclosed"},
        ("when.regex: invalid regular expression",),
    ),
    ParseError(
        "empty-regex", {"claim": "a", "regex": ""}, ("when.regex: expected a non-empty string",)
    ),
    ParseError("regex-not-string", {"claim": "a", "regex": 3}, ("when.regex",)),
    ParseError("empty-glob", {"claim": "a", "glob": ""}, ("when.glob",)),
    ParseError(
        "bad-each",
        {"claim": "a", "equals": "x", "each": "some"},
        ("when.each: must be any, all or none",),
    ),
    ParseError("each-bool", {"claim": "a", "equals": "x", "each": True}, ("when.each",)),
    ParseError(
        "case-sensitive-string",
        {"claim": "a", "equals": "x", "case_sensitive": "no"},
        ("when.case_sensitive",),
    ),
    ParseError("in-not-list", {"claim": "a", "in": "x"}, ("when.in: expected a list",)),
    ParseError("in-list-of-dicts", {"claim": "a", "in": [{"k": 1}]}, ("when.in",)),
    ParseError("contains-empty-list", {"claim": "a", "contains": []}, ("when.contains",)),
    ParseError("contains-dict", {"claim": "a", "contains": {"k": 1}}, ("when.contains",)),
    ParseError(
        "exists-not-bool", {"claim": "a", "exists": "yes"}, ("when.exists: must be true or false",)
    ),
    ParseError("equals-list", {"claim": "a", "equals": ["x"]}, ("when.equals",)),
    ParseError("equals-none", {"claim": "a", "equals": None}, ("when.equals",)),
    ParseError("all-empty", {"all": []}, ("when.all: expected a non-empty list",)),
    ParseError("any-not-list", {"any": {"claim": "a", "equals": "x"}}, ("when.any",)),
    ParseError(
        "all-with-claim",
        {"all": [{"claim": "a", "exists": True}], "claim": "b"},
        ("'all' cannot be combined", "claim"),
    ),
    ParseError(
        "not-with-claim",
        {"not": {"claim": "a", "exists": True}, "claim": "b"},
        ("'not' cannot be combined",),
    ),
    ParseError("bad-inside-not", {"not": {"claim": "a"}}, ("when.not",)),
    ParseError("bad-in-list", [{"claim": "a", "exists": True}, {"claim": "b"}], ("when[1]",)),
    ParseError(
        "bad-deep",
        {"all": [{"any": [{"none": [{"claim": "a", "regex": "["}]}]}]},
        ("when.all[0].any[0].none[0].regex",),
    ),
]


@pytest.mark.parametrize("case", PARSE_ERRORS, ids=attrgetter("name"))
def test_parse_error_names_the_key(case: ParseError) -> None:
    with pytest.raises(ValueError, match=re.escape(case.says[0])) as info:
        matchers.parse(case.when)
    for part in case.says[1:]:
        assert part in str(info.value)


def test_parse_where_prefix_is_used() -> None:
    with pytest.raises(ValueError, match=r"^rules\[3\]\.when\.any\[0\]"):
        matchers.parse({"any": [{"claim": "a"}]}, "rules[3].when")
