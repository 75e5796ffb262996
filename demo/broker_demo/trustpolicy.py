"""Role trust policies as IAM stores and evaluates them for a federated caller: Principal, Action, Effect, Condition.

Rules, from the IAM User Guide:
- reference_policies_evaluation-logic.md: a request is implicitly denied unless a statement
  allows it, and an explicit Deny in any matching statement overrides every Allow.
- access-analyzer-reference-policy-checks.md: role trust policies do not support NotPrincipal,
  a Resource or NotResource element, or `"Principal": "*"`.
- id_roles_create_for-idp_saml.md / id_roles_create_for-idp_oidc.md: a federated caller is
  `{"Principal": {"Federated": <provider ARN>}}`.
- reference_iam-quotas.md: a role trust policy is at most 2,048 characters (the default quota).
- Action names are matched without regard to case, with `*` and `?` wildcards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from broker_demo.conditions import Context, PolicyError, Test, all_hold, parse_condition

__all__ = ["PolicyError", "Statement", "TrustPolicy", "parse_trust_policy"]

TRUST_POLICY_QUOTA = 2048
VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "Action", "NotAction", "Condition"}
_FORBIDDEN = {
    "NotPrincipal": "Role trust policies do not support NotPrincipal",
    "Resource": "Role trust policies apply to the role they are attached to: no Resource",
    "NotResource": "Role trust policies apply to the role they are attached to: no NotResource",
}
_PRINCIPAL_TYPES = ("AWS", "Federated", "Service", "CanonicalUser")


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    federated: tuple[str, ...]  # the Federated principals; other principal types never match
    actions: tuple[str, ...]
    not_action: bool
    conditions: tuple[Test, ...]

    def applies(self, principal: str, action: str, context: Context) -> bool:
        if principal not in self.federated:
            return False
        named = any(_action(p).fullmatch(action) for p in self.actions)
        if named == self.not_action:
            return False
        return all_hold(self.conditions, context)


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    statements: tuple[Statement, ...]
    document: dict[str, Any] = field(compare=False)

    def allows(self, principal: str, action: str, context: Context) -> bool:
        """Explicit Deny wins; otherwise some Allow must match; otherwise implicitly denied."""
        matching = [s for s in self.statements if s.applies(principal, action, context)]
        if any(s.effect == "Deny" for s in matching):
            return False
        return any(s.effect == "Allow" for s in matching)

    def refused(self, principal: str, actions: Sequence[str], context: Context) -> str | None:
        """The first of `actions` this policy does not allow, or None when it allows them all."""
        return next((a for a in actions if not self.allows(principal, a, context)), None)


@cache
def _action(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise PolicyError(f"{where} must be a non-empty string or list of strings")
    return tuple(str(v) for v in items)


def _principal(value: object) -> tuple[str, ...]:
    if value == "*":
        raise PolicyError('"Principal": "*" is not supported in a role trust policy')
    if not isinstance(value, Mapping) or not value:
        raise PolicyError("Principal must be an object such as {'Federated': provider ARN}")
    unknown = set(value) - set(_PRINCIPAL_TYPES)
    if unknown:
        raise PolicyError(f"unknown principal type {sorted(unknown)[0]!r}")
    for kind, names in value.items():
        _strings(names, f"Principal.{kind}")
    return _strings(value["Federated"], "Principal.Federated") if "Federated" in value else ()


def _statement(raw: object) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyError("each Statement must be an object")
    for name, why in _FORBIDDEN.items():
        if name in raw:
            raise PolicyError(why)
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"unknown statement element {sorted(unknown)[0]!r}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError("Effect must be Allow or Deny")
    if "Principal" not in raw:
        raise PolicyError("a trust policy statement needs a Principal")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("a statement needs exactly one of Action and NotAction")
    not_action = "NotAction" in raw
    actions = _strings(raw["NotAction" if not_action else "Action"], "Action")
    conditions = parse_condition(raw["Condition"]) if "Condition" in raw else ()
    return Statement(str(effect), _principal(raw["Principal"]), actions, not_action, conditions)


def parse_trust_policy(document: str | Mapping[str, Any]) -> TrustPolicy:
    """Check a trust policy the way `aws iam create-role` does; raise PolicyError if IAM would not."""
    if isinstance(document, str):
        try:
            loaded = json.loads(document)
        except ValueError as exc:
            raise PolicyError("Syntax errors in policy.") from exc
    else:
        loaded = json.loads(json.dumps(document))  # a private, JSON-shaped copy
    if not isinstance(loaded, dict):
        raise PolicyError("a policy document is a JSON object")
    size = len(json.dumps(loaded, separators=(",", ":")))
    if size > TRUST_POLICY_QUOTA:
        raise PolicyError(
            f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA} ({size} characters)"
        )
    unknown = set(loaded) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"unknown policy element {sorted(unknown)[0]!r}")
    if loaded.get("Version", "2008-10-17") not in VERSIONS:
        raise PolicyError(f"Version must be one of {VERSIONS}")
    raw = loaded.get("Statement")
    statements = raw if isinstance(raw, list) else [raw] if raw is not None else []
    if not statements:
        raise PolicyError("a policy needs at least one Statement")
    return TrustPolicy(tuple(_statement(s) for s in statements), loaded)
