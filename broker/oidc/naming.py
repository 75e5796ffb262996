"""RoleSessionName for a workload token: the IdP's template over its claims, else email or sub."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from broker import matchers
from broker.aws.arn import session_name

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def oidc_session_name(subject: str, claims: Mapping[str, Any], template: str | None) -> str:
    """The template when every placeholder resolves to a scalar, else email, else sub; then
    made STS-safe ([\\w+=,.@-]{2,64})."""
    if template:
        rendered = _render(template, claims)
        if rendered:
            return session_name(rendered)
    email = claims.get("email")
    return session_name(email if isinstance(email, str) and email else subject)


def _render(template: str, claims: Mapping[str, Any]) -> str | None:
    missing = False

    def value(m: re.Match[str]) -> str:
        nonlocal missing
        found, v = matchers.lookup(claims, m.group(1))
        if not found or isinstance(v, dict | list):
            missing = True
            return ""
        return str(v)

    out = _PLACEHOLDER.sub(value, template)
    return None if missing else out
