"""IAM policy `Condition` blocks: string operators, `ForAnyValue:`/`ForAllValues:`, `...IfExists`, `Null`.

The rules, from the IAM User Guide:
- reference_policies_elements_condition_operators.md: StringEquals / StringNotEquals (case
  sensitive), …IgnoreCase, StringLike / StringNotLike with `*` and `?` anywhere; a key absent from
  the request makes a condition false, except that negated operators are then true, and
  `…IfExists` is true; `Null` tests presence.
- reference_policies_multi-value-conditions.md: several operators, or several keys under one
  operator, AND together; several values for one key OR together, and for a negated operator
  that becomes "matches none of them". `ForAllValues` is true when every request value matches
  (and when there are none); `ForAnyValue` when at least one does (false when there are none).
- reference_policies_elements_condition.md: condition key names are not case sensitive.

A plain operator (no set qualifier) on a key that holds several values in the request is read
as "any value matches" (negated: "no value matches"); IAM asks for a set qualifier there.
Policy variables (`${…}`) are not modelled: a policy that uses one is refused when registered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

# The request context: lower-cased key name -> its values. A key that is absent is not in the map.
Context = Mapping[str, tuple[str, ...]]

_STRING_OPERATORS = {
    # name (lower case): (base comparison, negated)
    "stringequals": ("equals", False),
    "stringnotequals": ("equals", True),
    "stringequalsignorecase": ("equalsignorecase", False),
    "stringnotequalsignorecase": ("equalsignorecase", True),
    "stringlike": ("like", False),
    "stringnotlike": ("like", True),
}
_QUALIFIERS = ("forallvalues", "foranyvalue")


class PolicyError(ValueError):
    """IAM's MalformedPolicyDocument: the policy is not one IAM would store."""


@dataclass(frozen=True, slots=True)
class Test:
    """One key under one operator: `{"ForAnyValue:StringLike": {"key": ["v1", "v2"]}}`."""

    operator: str  # as written, for messages
    qualifier: str  # "", "forallvalues" or "foranyvalue"
    comparison: str  # "equals", "equalsignorecase", "like" or "null"
    negated: bool
    if_exists: bool
    key: str  # lower case
    values: tuple[str, ...]

    def holds(self, context: Context) -> bool:
        present = self.key in context
        found = context.get(self.key, ())
        if self.comparison == "null":
            return any((v == "true") != present for v in self.values)
        if not present and self.if_exists:
            return True
        if self.qualifier == "forallvalues":
            return all(self._value_passes(v) for v in found)
        if self.qualifier == "foranyvalue":
            return any(self._value_passes(v) for v in found)
        if not present:
            return self.negated
        if self.negated:
            return all(self._value_passes(v) for v in found)
        return any(self._value_passes(v) for v in found)

    def _value_passes(self, value: str) -> bool:
        matched = any(_matches(self.comparison, value, p) for p in self.values)
        return not matched if self.negated else matched


def _matches(comparison: str, value: str, pattern: str) -> bool:
    if comparison == "equals":
        return value == pattern
    if comparison == "equalsignorecase":
        return value.casefold() == pattern.casefold()
    return _glob(pattern).fullmatch(value) is not None


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    """StringLike: `*` is any run of characters, `?` any one character; case sensitive."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _scalar(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyError(f"{where}: a condition value must be a string, number or boolean")


def _operator(name: str) -> tuple[str, str, bool, bool]:
    """`ForAnyValue:StringLikeIfExists` -> (qualifier, comparison, negated, if_exists)."""
    qualifier, _, base = name.rpartition(":")
    qualifier = qualifier.lower()
    if qualifier and qualifier not in _QUALIFIERS:
        raise PolicyError(f"unknown condition set operator {qualifier!r} in {name!r}")
    lowered = base.lower()
    if lowered == "null":
        if qualifier:
            raise PolicyError("Null takes no set operator")
        return "", "null", False, False
    if_exists = lowered.endswith("ifexists")
    lowered = lowered.removesuffix("ifexists")
    if lowered not in _STRING_OPERATORS:
        raise PolicyError(
            f"condition operator {name!r} is not one this stand-in models "
            "(String operators, their IfExists forms and Null)"
        )
    comparison, negated = _STRING_OPERATORS[lowered]
    return qualifier, comparison, negated, if_exists


def parse_condition(block: object) -> tuple[Test, ...]:
    """A statement's `Condition` element, checked the way IAM checks it on upload."""
    if not isinstance(block, Mapping):
        raise PolicyError("Condition must be an object")
    tests = []
    for name, keys in block.items():
        qualifier, comparison, negated, if_exists = _operator(str(name))
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"{name}: expected an object of condition keys")
        for key, raw in keys.items():
            where = f"{name}/{key}"
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise PolicyError(f"{where}: no values")
            values = tuple(_scalar(v, where) for v in items)
            if any("${" in v for v in values):
                raise PolicyError(f"{where}: policy variables are not modelled by this stand-in")
            if comparison == "null" and not set(values) <= {"true", "false"}:
                raise PolicyError(f"{where}: Null takes true or false")
            tests.append(
                Test(str(name), qualifier, comparison, negated, if_exists, str(key).lower(), values)
            )
    return tuple(tests)


def all_hold(tests: tuple[Test, ...], context: Context) -> bool:
    """Every operator and every key in a Condition block must hold (logical AND)."""
    return all(test.holds(context) for test in tests)
