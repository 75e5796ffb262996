"""Claim paths (dotted, JSON Pointer) and value comparison as issuers send values."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import pytest

from broker import claims, matchers

pytestmark = pytest.mark.unit

# A projected Kubernetes service-account token's claims: the nested object's own key has a dot.
# https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/
K8S: dict[str, Any] = {
    "aud": ["sts.amazonaws.com"],
    "iss": "https://oidc.eks.us-west-2.amazonaws.com/id/80D562ED8026E91294D52E09BEA261D4",
    "kubernetes.io": {
        "namespace": "reporting",
        "pod": {"name": "report-7f9c", "uid": "0d64402f-5c87-469c-b441-8bd332b1bd07"},
        "serviceaccount": {"name": "exporter", "uid": "8145a6d5-4932-48e9-86b5-7c33eb9d6ad1"},
    },
    "sub": "system:serviceaccount:reporting:exporter",
}
CIRCLE = {"oidc.circleci.com/project-id": "5f1d-project", "a/b": {"c~d": 1}}


@dataclass(frozen=True)
class PathCase:
    name: str
    doc: dict[str, Any]
    path: str
    value: Any  # _ABSENT when the path must not resolve
    keys: tuple[claims.Key, ...] = ()


_ABSENT = object()

PATHS = [
    PathCase("top-level", K8S, "sub", K8S["sub"], ("sub",)),
    PathCase(
        "key-with-dot-then-nested",
        K8S,
        "kubernetes.io.namespace",
        "reporting",
        ("kubernetes.io", "namespace"),
    ),
    PathCase(
        "three-levels",
        K8S,
        "kubernetes.io.serviceaccount.name",
        "exporter",
        ("kubernetes.io", "serviceaccount", "name"),
    ),
    PathCase("typo-absent", K8S, "kubernetes.io.namespce", _ABSENT),
    PathCase("wrong-split-absent", K8S, "kubernetes.io-namespace", _ABSENT),
    PathCase(
        "whole-key-with-dots-and-slash",
        CIRCLE,
        "oidc.circleci.com/project-id",
        "5f1d-project",
        ("oidc.circleci.com/project-id",),
    ),
    PathCase(
        "backtracks-when-longest-key-leads-nowhere",
        {"a.b": {"x": 1}, "a": {"b": {"c": 2}}},
        "a.b.c",
        2,
        ("a", "b", "c"),
    ),
    PathCase(
        "longest-key-wins-when-both-resolve",
        {"a.b": {"c": "long"}, "a": {"b": {"c": "short"}}},
        "a.b.c",
        "long",
        ("a.b", "c"),
    ),
    PathCase("exact-key-wins", {"a.b": 1, "a": {"b": 2}}, "a.b", 1, ("a.b",)),
    PathCase("dotted-never-indexes-lists", {"a": [{"b": 1}]}, "a.0.b", _ABSENT),
    PathCase("empty-key-segment", {"a": {"": {"b": 1}}}, "a..b", 1, ("a", "", "b")),
    # RFC 6901
    PathCase(
        "pointer",
        K8S,
        "/kubernetes.io/namespace",
        "reporting",
        ("kubernetes.io", "namespace"),
    ),
    PathCase("pointer-never-splits-dots", K8S, "/kubernetes.io.namespace", _ABSENT),
    PathCase("pointer-escape-slash", CIRCLE, "/oidc.circleci.com~1project-id", "5f1d-project"),
    PathCase("pointer-escapes-in-order", CIRCLE, "/a~1b/c~0d", 1, ("a/b", "c~d")),
    PathCase("pointer-array-index", {"g": ["x", "y"]}, "/g/1", "y", ("g", 1)),
    PathCase("pointer-index-leading-zero", {"g": ["x", "y"]}, "/g/01", _ABSENT),
    PathCase("pointer-index-past-end", {"g": ["x"]}, "/g/1", _ABSENT),
    PathCase("pointer-dash-is-past-end", {"g": ["x"]}, "/g/-", _ABSENT),
    PathCase("pointer-through-scalar", {"a": "s"}, "/a/b", _ABSENT),
    PathCase("pointer-empty-key", {"": 5}, "/", 5, ("",)),
]


@pytest.mark.parametrize("case", PATHS, ids=attrgetter("name"))
def test_resolve(case: PathCase) -> None:
    found = claims.resolve(case.doc, case.path)
    if case.value is _ABSENT:
        assert found is None
        return
    assert found is not None
    assert found.value == case.value
    if case.keys:
        assert found.keys == case.keys


@pytest.mark.parametrize("bad", ["/a~2b", "/a~", "/~x"])
def test_malformed_pointer_is_refused_at_load(bad: str) -> None:
    with pytest.raises(ValueError, match="JSON Pointer"):
        matchers.parse({"claim": bad, "exists": True})


def test_many_splits_cost_a_walk_per_split_point() -> None:
    """Every prefix exists at every level, but the last key never does: memoised, not 2^n."""
    n = 40
    path = ".".join(["a"] * n) + ".z"
    level: dict[str, Any] = {}
    for _ in range(n):
        level = {".".join(["a"] * k): level for k in range(1, n + 1)}
    assert claims.resolve(level, path) is None


def test_kubernetes_nested_claim_matches_and_trace_shows_the_walk() -> None:
    """Issue 14: this rule never matched a real projected service-account token."""
    m = matchers.parse({"claim": "kubernetes.io.namespace", "equals": "reporting"})
    outcome = m.evaluate(K8S)
    assert outcome.matched
    assert '["kubernetes.io"]["namespace"]' in outcome.reason


def test_absent_path_says_where_it_stopped() -> None:
    outcome = matchers.parse({"claim": "kubernetes.io.namespce", "equals": "x"}).evaluate(K8S)
    assert not outcome.matched
    assert 'stops after ["kubernetes.io"]' in outcome.reason


@dataclass(frozen=True)
class ValueCase:
    name: str
    claim: Any  # as the issuer sends it (JSON)
    wanted: Any  # as the rule says it (YAML)
    equal: bool
    case_sensitive: bool = True


GUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
VALUES = [
    # booleans: GitHub/GitLab send "true", Google sends true
    ValueCase("yaml-true-json-true", True, True, True),
    ValueCase("yaml-true-string-true", "true", True, True),
    ValueCase("yaml-false-string-false", "false", False, True),
    ValueCase("yaml-true-string-false", "false", True, False),
    ValueCase("quoted-true-json-true", True, "true", True),
    ValueCase("yaml-true-string-True", "True", True, False),
    ValueCase("yaml-true-string-yes", "yes", True, False),
    ValueCase("true-is-not-1", 1, True, False),
    ValueCase("1-is-not-true", True, 1, False),
    ValueCase("string-1-is-not-true", "1", True, False),
    # numbers by value, numeric strings by JSON syntax
    ValueCase("int-int", 74, 74, True),
    ValueCase("string-id-yaml-int", "74", 74, True),
    ValueCase("int-claim-quoted-rule", 74, "74", True),
    ValueCase("float-int", 1.0, 1, True),
    ValueCase("string-float-int", "1.0", 1, True),
    ValueCase("exponent", "1e2", 100, True),
    ValueCase("tenth", 0.1, "0.1", True),
    ValueCase("big-id", "123456789012345678901234567890", 123456789012345678901234567890, True),
    ValueCase(
        "big-id-off-by-one", "123456789012345678901234567891", 123456789012345678901234567890, False
    ),
    ValueCase("leading-zero-is-a-string", "007", 7, False),
    ValueCase("hex-is-a-string", "0x10", 16, False),
    ValueCase("underscore-is-a-string", "1_000", 1000, False),
    ValueCase("space-is-a-string", " 1", 1, False),
    ValueCase("nan-is-not-a-number", "NaN", float("nan"), False),
    ValueCase("two-numeric-strings-compare-as-strings", "1.0", "1", False),
    # strings, UUIDs
    ValueCase("string", "prod", "prod", True),
    ValueCase("string-case", "Prod", "prod", False),
    ValueCase("string-case-insensitive", "Prod", "prod", True, case_sensitive=False),
    ValueCase("guid-case", GUID.upper(), GUID, True),
    ValueCase("guid-different", GUID, GUID[:-1] + "4", False),
    ValueCase("guid-vs-non-guid", GUID.upper() + "x", GUID + "x", False),
    # never equal
    ValueCase("null", None, "None", False),
    ValueCase("object", {"a": 1}, "a", False),
    ValueCase("list", ["a"], "a", False),
]


@pytest.mark.parametrize("case", VALUES, ids=attrgetter("name"))
def test_same(case: ValueCase) -> None:
    assert claims.same(case.claim, case.wanted, case_sensitive=case.case_sensitive) is case.equal


OPERATOR_VALUES = [
    ({"claim": "ref_protected", "equals": True}, {"ref_protected": "true"}, True),
    ({"claim": "ref_protected", "equals": True}, {"ref_protected": "false"}, False),
    ({"claim": "email_verified", "equals": True}, {"email_verified": True}, True),
    ({"claim": "email_verified", "equals": True}, {"email_verified": "true"}, True),
    ({"claim": "repository_id", "in": [74, 75]}, {"repository_id": "74"}, True),
    ({"claim": "ver", "equals": "1"}, {"ver": 1}, True),
    ({"claim": "groups", "contains": GUID}, {"groups": [GUID.upper(), "x"]}, True),
    (
        {"claim": "groups", "contains": [GUID, "a1b2c3d4-0000-4000-8000-000000000000"]},
        {"groups": [GUID]},
        False,
    ),
    ({"claim": "ids", "contains": 3}, {"ids": ["1", "2", "3"]}, True),
]


@pytest.mark.parametrize(("when", "doc", "matched"), OPERATOR_VALUES)
def test_operators_use_the_value_rules(when: Any, doc: dict[str, Any], matched: bool) -> None:
    assert matchers.parse(when).evaluate(doc).matched is matched


def test_claim_paths_of_a_matcher() -> None:
    m = matchers.parse(
        {
            "all": [
                {"claim": "a", "exists": True},
                {"not": {"any": [{"claim": "/b/c", "equals": 1}]}},
            ]
        }
    )
    assert matchers.claim_paths(m) == {"a", "/b/c"}
