"""`setup plan`: the live IAM account against what the config implies, as a readable diff (drift check for CI)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import botocore.exceptions

from broker.setup import SetupError
from broker.setup.desired import AccountSpec, OidcProviderSpec, RoleSpec, SamlProviderSpec
from broker.setup.iam import find_oidc, find_saml

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@dataclass
class Drift:
    kind: str  # "missing" | "changed"
    what: str  # e.g. "role deploy-prod (github-deploy)"
    detail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "detail": self.detail}


def normalised(policy: dict[str, Any] | str) -> dict[str, Any]:
    """A policy in one canonical shape: IAM returns it URL-encoded, with singletons unwrapped.

    IAM policy grammar: a single value and a one-element list mean the same, and neither the
    order of statements nor of values in a condition matters.
    """
    doc = json.loads(unquote(policy)) if isinstance(policy, str) else policy
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    out = [_statement(s) for s in statements]
    out.sort(key=lambda s: json.dumps(s, sort_keys=True))
    return {"Version": doc.get("Version"), "Statement": out}


def _values(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _values(x) for k, x in sorted(v.items())}
    if isinstance(v, list | str):
        return sorted({str(x) for x in (v if isinstance(v, list) else [v])})
    return v


def _statement(s: dict[str, Any]) -> dict[str, Any]:
    return {k: _values(v) if k != "Sid" else v for k, v in sorted(s.items())}


def _policy_lines(policy: dict[str, Any]) -> list[str]:
    return json.dumps(policy, indent=2, sort_keys=True).splitlines()


def plan_account(iam: IAMClient, spec: AccountSpec) -> list[Drift]:
    drifts: list[Drift] = []
    for p in spec.providers:
        if isinstance(p, OidcProviderSpec):
            drifts += _oidc(iam, p)
        elif isinstance(p, SamlProviderSpec):
            drifts += _saml(iam, p)
    for r in spec.roles:
        drifts += _role(iam, r)
    return drifts


def _oidc(iam: IAMClient, p: OidcProviderSpec) -> list[Drift]:
    what = f"oidc-provider {p.url} ({p.idp})"
    found = find_oidc(iam, p.url)
    if found is None:
        return [Drift("missing", what, [f"client IDs {', '.join(p.client_ids)}"])]
    state = found[1]
    detail = [f"+ client ID {c}" for c in p.client_ids if c not in state.client_ids]
    # An audience IAM accepts but the broker does not is still a way in: it is drift too.
    detail += [f"- client ID {c}" for c in state.client_ids if c not in p.client_ids]
    if p.thumbprints is not None and set(p.thumbprints) != set(state.thumbprints):
        detail.append(
            f"thumbprints {', '.join(state.thumbprints) or 'none'} → {', '.join(p.thumbprints)}"
        )
    return [Drift("changed", what, detail)] if detail else []


def _saml(iam: IAMClient, p: SamlProviderSpec) -> list[Drift]:
    what = f"saml-provider {p.idp}"
    found = find_saml(iam, p.idp)
    if found is None:
        return [Drift("missing", what, [f"metadata from {p.source}"])]
    live = found[1].strip().splitlines()
    want = p.metadata.strip().splitlines()
    if live == want:
        return []
    diff = difflib.unified_diff(live, want, "live", "config", lineterm="", n=1)
    return [Drift("changed", what, ["metadata document differs:", *list(diff)[2:42]])]


def _role(iam: IAMClient, r: RoleSpec) -> list[Drift]:
    what = f"role {r.name} ({r.arn})"
    try:
        role = iam.get_role(RoleName=r.iam_name)["Role"]
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        if err.get("Code") == "NoSuchEntity":
            return [Drift("missing", what, [f"MaxSessionDuration {r.max_session_seconds}"])]
        raise SetupError(f"IAM GetRole: {err.get('Code')}: {err.get('Message', '')}") from None
    detail = []
    if role.get("Path", "/") != r.path:
        detail.append(f"path {role.get('Path')} → {r.path}")
    live_max = role.get("MaxSessionDuration", 3600)
    if live_max != r.max_session_seconds:
        detail.append(f"MaxSessionDuration {live_max} → {r.max_session_seconds}")
    document: Any = role.get("AssumeRolePolicyDocument", {})
    live = normalised(document)
    want = normalised(r.trust)
    if live != want:
        diff = difflib.unified_diff(
            _policy_lines(live), _policy_lines(want), "live", "config", lineterm="", n=2
        )
        detail += ["trust policy differs:", *list(diff)[2:]]
    return [Drift("changed", what, detail)] if detail else []
