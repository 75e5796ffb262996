"""The rule language's `when` clause: parse it once at load, evaluate it purely per identity.

A matcher is either a claim test or a combination:

    {claim: groups, contains: admins}                  # the claim's values include "admins"
    {claim: ref, glob: "refs/heads/*"}                 # fnmatch-style, whole value
    {claim: groups, regex: 'aws-(?P<account>\\d{12})-(?P<role>.+)'}   # anchored; named groups bind
    {claim: repo, in: [a, b]}  {claim: email, exists: true}  {claim: x, equals: y}
    {claim: groups, glob: "team-*", each: all}          # every value must match (any | all | none)
    {all: [...]}  {any: [...]}  {none: [...]}  {not: {...}}
    a list of matchers is {all: [...]}

Claim paths and value types are `broker.claims`'s: a dotted path walks nested objects through
keys that may contain dots, `/a/b` is a JSON Pointer, and `"true"` equals `true`.
`case_sensitive` defaults to true.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from broker import claims

Scalar = str | int | float | bool
Bindings = dict[str, str]
Each = Literal["any", "all", "none"]
_OPS = ("equals", "glob", "regex", "in", "contains", "exists")
_MAX_BINDINGS = 256


@dataclass(frozen=True, slots=True)
class Outcome:
    matched: bool
    reason: str
    # One dict of named-group values per way the matcher matched (regex over a list
    # may match several values). [{}] for a match that binds nothing.
    bindings: tuple[Bindings, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimTest:
    claim: str
    op: str
    value: Any
    each: Each = "any"
    case_sensitive: bool = True
    pattern: re.Pattern[str] | None = None  # compiled glob or regex

    def evaluate(self, attributes: Mapping[str, Any]) -> Outcome:
        found = claims.resolve(attributes, self.claim)
        name = self.claim if found is None else _named(self.claim, found.keys)
        if self.op == "exists":
            ok = (found is not None) == bool(self.value)
            where = "is present" if found is not None else _absent(attributes, self.claim)
            return Outcome(ok, f"{name} {where}", _one(ok))
        if found is None:
            return Outcome(False, f"{name} {_absent(attributes, self.claim)}")
        values = _as_values(found.value)
        if self.op == "contains":
            wanted = self.value if isinstance(self.value, list) else [self.value]
            missing = [w for w in wanted if not any(self._same(v, w) for v in values)]
            if missing:
                return Outcome(False, f"{name} lacks {_show(missing)}")
            return Outcome(True, f"{name} contains {_show(wanted)}", ({},))
        hits: list[Bindings] = []
        hit_values: list[str] = []
        for v in values:
            bound = self._test(v)
            if bound is not None:
                hits.append(bound)
                hit_values.append(_text(v))
        desc = f"{self.op} {_show(self.value)}"
        if self.each == "any":
            if hits:
                return Outcome(True, f"{name}={_show(hit_values)} {desc}", tuple(hits))
            return Outcome(False, f"no value of {name} {_show(values)} {desc}")
        if self.each == "all":
            if values and len(hits) == len(values):
                return Outcome(True, f"every value of {name} {desc}", tuple(hits))
            return Outcome(False, f"not every value of {name} {_show(values)} {desc}")
        if hits:
            return Outcome(False, f"{name}={_show(hit_values)} {desc}")
        return Outcome(True, f"no value of {name} {desc}", ({},))

    def _same(self, claim: Any, wanted: Any) -> bool:
        return claims.same(claim, wanted, case_sensitive=self.case_sensitive)

    def _test(self, v: Any) -> Bindings | None:
        if self.op == "equals":
            return {} if self._same(v, self.value) else None
        if self.op == "in":
            return {} if any(self._same(v, x) for x in self.value) else None
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            return None
        assert self.pattern is not None
        m = self.pattern.fullmatch(str(v))
        if m is None:
            return None
        return {k: g for k, g in m.groupdict().items() if g is not None}


@dataclass(frozen=True, slots=True)
class Combine:
    kind: Literal["all", "any", "none"]
    children: tuple[Matcher, ...]

    def evaluate(self, attributes: Mapping[str, Any]) -> Outcome:
        outcomes = [c.evaluate(attributes) for c in self.children]
        if self.kind == "any":
            won = [o for o in outcomes if o.matched]
            if won:
                alts = tuple(b for o in won for b in o.bindings)[:_MAX_BINDINGS]
                return Outcome(True, " or ".join(o.reason for o in won), alts)
            return Outcome(False, "none of: " + "; ".join(o.reason for o in outcomes))
        if self.kind == "none":
            won = [o for o in outcomes if o.matched]
            if won:
                return Outcome(False, "but " + "; ".join(o.reason for o in won))
            return Outcome(True, "none of: " + "; ".join(o.reason for o in outcomes), ({},))
        failed = [o for o in outcomes if not o.matched]
        if failed:
            return Outcome(False, "; ".join(o.reason for o in failed))
        binds: list[Bindings] = [{}]
        for o in outcomes:  # every way all children match together
            binds = [{**a, **b} for a in binds for b in o.bindings][:_MAX_BINDINGS]
        return Outcome(True, " and ".join(o.reason for o in outcomes), tuple(binds))


@dataclass(frozen=True, slots=True)
class Not:
    child: Matcher

    def evaluate(self, attributes: Mapping[str, Any]) -> Outcome:
        o = self.child.evaluate(attributes)
        return Outcome(not o.matched, f"not ({o.reason})", () if o.matched else ({},))


Matcher = ClaimTest | Combine | Not


def lookup(attributes: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """Find a claim by a path (see `broker.claims`): (found, value)."""
    found = claims.resolve(attributes, path)
    return (False, None) if found is None else (True, found.value)


def claim_paths(m: Matcher) -> set[str]:
    """Every claim path a matcher reads."""
    if isinstance(m, ClaimTest):
        return {m.claim}
    if isinstance(m, Not):
        return claim_paths(m.child)
    return set().union(*(claim_paths(c) for c in m.children))


def group_names(m: Matcher) -> set[str]:
    """Named regex groups a matcher can bind, for checking grant templates at load."""
    if isinstance(m, ClaimTest):
        if m.op != "regex" or m.pattern is None or m.each == "none":
            return set()
        return set(m.pattern.groupindex)
    if isinstance(m, Not):
        return set()
    if m.kind == "all":
        return set().union(*(group_names(c) for c in m.children))
    if m.kind == "any":  # only names every branch binds are certain
        sets = [group_names(c) for c in m.children]
        return set.intersection(*sets) if sets else set()
    return set()


def parse(raw: Any, where: str = "when") -> Matcher:
    """Parse a `when` clause; raise ValueError naming the offending key."""
    if isinstance(raw, list):
        return Combine("all", tuple(parse(x, f"{where}[{i}]") for i, x in enumerate(raw)))
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping or a list of matchers")
    keys = set(raw)
    kind: Literal["all", "any", "none"]
    for kind in ("all", "any", "none"):
        if kind in keys:
            if keys != {kind}:
                raise ValueError(
                    f"{where}: '{kind}' cannot be combined with {sorted(keys - {kind})}"
                )
            items = raw[kind]
            if not isinstance(items, list) or not items:
                raise ValueError(f"{where}.{kind}: expected a non-empty list of matchers")
            return Combine(
                kind,
                tuple(parse(x, f"{where}.{kind}[{i}]") for i, x in enumerate(items)),
            )
    if "not" in keys:
        if keys != {"not"}:
            raise ValueError(f"{where}: 'not' cannot be combined with {sorted(keys - {'not'})}")
        return Not(parse(raw["not"], f"{where}.not"))
    return _parse_claim(raw, where)


def _parse_claim(raw: Mapping[str, Any], where: str) -> ClaimTest:
    allowed = {"claim", "each", "case_sensitive", *_OPS}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    claim = raw.get("claim")
    if not isinstance(claim, str) or not claim:
        raise ValueError(f"{where}.claim: required, a claim or attribute name")
    try:
        claims.check_path(claim)
    except ValueError as exc:
        raise ValueError(f"{where}.claim: {exc}") from None
    ops = [k for k in _OPS if k in raw]
    if len(ops) != 1:
        raise ValueError(f"{where}: exactly one of {list(_OPS)} is required, got {ops or 'none'}")
    op, value = ops[0], raw[ops[0]]
    each = raw.get("each", "any")
    if each not in ("any", "all", "none"):
        raise ValueError(f"{where}.each: must be any, all or none")
    case_sensitive = raw.get("case_sensitive", True)
    if not isinstance(case_sensitive, bool):
        raise ValueError(f"{where}.case_sensitive: must be true or false")
    pattern: re.Pattern[str] | None = None
    flags = 0 if case_sensitive else re.IGNORECASE
    at = f"{where}.{op}"
    if op in ("glob", "regex"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{at}: expected a non-empty string")
        source = fnmatch.translate(value) if op == "glob" else value
        try:
            pattern = re.compile(source, flags)
        except re.error as exc:
            raise ValueError(f"{at}: invalid regular expression: {exc}") from None
    elif op == "in":
        if not isinstance(value, list) or not all(_is_scalar(x) for x in value):
            raise ValueError(f"{at}: expected a list of values")
    elif op == "contains":
        if not (
            _is_scalar(value) or (isinstance(value, list) and value and all(map(_is_scalar, value)))
        ):
            raise ValueError(f"{at}: expected a value or a non-empty list of values")
    elif op == "exists":
        if not isinstance(value, bool):
            raise ValueError(f"{at}: must be true or false")
    elif not _is_scalar(value):
        raise ValueError(f"{at}: expected a string, number or boolean")
    return ClaimTest(claim, op, value, each, case_sensitive, pattern)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool)


def _as_values(raw: Any) -> list[Any]:
    if isinstance(raw, list | tuple):
        return list(raw)
    return [raw]


def _named(path: str, keys: tuple[claims.Key, ...]) -> str:
    """The path, and the keys it walked when that is not just the path itself."""
    return path if keys == (path,) else f"{path} {claims.show_keys(keys)}"


def _absent(attributes: Mapping[str, Any], path: str) -> str:
    reached = claims.walked(attributes, path)
    if not reached:
        return "is absent"
    return f"is absent (the path stops after {claims.show_keys(reached)})"


def _one(ok: bool) -> tuple[Bindings, ...]:
    return ({},) if ok else ()


def _text(v: Any) -> str:
    """A claim value as its JSON reads (true, null), so the reason matches the token."""
    if isinstance(v, str):
        return v
    return "true" if v is True else "false" if v is False else "null" if v is None else repr(v)


def _show(v: Any) -> str:
    if isinstance(v, Sequence) and not isinstance(v, str):
        items = [_text(x) for x in v]
        shown = ", ".join(items[:5]) + (f", …(+{len(items) - 5})" if len(items) > 5 else "")
        return f"[{shown}]"
    return repr(v) if isinstance(v, str) else _text(v)
