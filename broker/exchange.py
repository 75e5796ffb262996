"""The one path after verification: grants → chosen role → STS → credentials, audited."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from broker import matchers
from broker.errors import (
    BrokerError,
    InvalidParameter,
    NoRoleGranted,
    RoleNotGranted,
    RoleSelectionRequired,
)
from broker.identity import Credentials, Identity, RoleGrant
from broker.mapping import Decision
from broker.sts import clamp_duration, session_name

if TYPE_CHECKING:
    from broker.runtime import Runtime

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def choose(
    decision: Decision, wanted: str | None, config_arn: Mapping[str, str] | None = None
) -> RoleGrant:
    """A role is granted only by a rule: the caller may pick among grants, never add one.
    `config_arn` (role name → ARN) lets a refusal by name explain itself."""
    config_arn = config_arn or {}
    if not decision.grants:
        raise NoRoleGranted(
            "No rule grants this identity any role.",
            extra={"refused": [{"role": r.arn, "reason": r.reason} for r in decision.refused]},
        )
    if wanted:
        found = decision.find(wanted)
        if len(found) == 1:
            return found[0]
        if found:
            raise RoleSelectionRequired(
                f"Several accounts have a role named {wanted!r}; choose one by ARN.",
                extra={"roles": [role_summary(g) for g in found]},
            )
        arn = config_arn.get(wanted, wanted)
        why = next((r.reason for r in decision.refused if r.arn == arn), None)
        raise RoleNotGranted(
            f"The role {wanted!r} is not granted to this identity" + (f": {why}." if why else "."),
        )
    if len(decision.grants) > 1:
        raise RoleSelectionRequired(
            "Several roles are granted; choose one with the `role` parameter.",
            extra={"roles": [role_summary(g) for g in decision.grants]},
        )
    return decision.grants[0]


def role_summary(g: RoleGrant) -> dict[str, Any]:
    return {
        "name": g.name,
        "arn": g.arn,
        "account_id": g.account_id,
        "account_name": g.account_name,
        "rule": g.rule,
    }


def parse_duration(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidParameter("duration_seconds must be a whole number of seconds.") from None
    if not 900 <= value <= 43200:
        raise InvalidParameter("duration_seconds must be between 900 and 43200.")
    return value


def oidc_session_name(identity: Identity, template: str | None) -> str:
    """RoleSessionName from the IdP's template, else email, else sub; then STS-safe."""
    claims = identity.attributes
    if template:
        rendered = _render(template, claims)
        if rendered:
            return session_name(rendered)
    email = claims.get("email")
    return session_name(email if isinstance(email, str) and email else identity.subject)


def _render(template: str, claims: Any) -> str | None:
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


async def assume(
    rt: Runtime, identity: Identity, grant: RoleGrant, duration: int | None
) -> Credentials:
    """Call STS with the proof the identity came with."""
    seconds = clamp_duration(duration, grant.max_session_seconds)
    if identity.protocol == "saml":
        assert grant.principal_arn is not None  # mapping only grants signed pairs for SAML
        return await rt.sts.assume_role_with_saml(
            role_arn=grant.arn,
            principal_arn=grant.principal_arn,
            assertion=identity.proof,
            duration=seconds,
            policy=grant.session_policy,
            policy_arns=grant.session_policy_arns,
        )
    idp = rt.config.identity_providers[identity.idp]
    template = getattr(idp, "session_name", None)
    return await rt.sts.assume_role_with_web_identity(
        role_arn=grant.arn,
        token=identity.proof,
        session_name=oidc_session_name(identity, template),
        duration=seconds,
        policy=grant.session_policy,
        policy_arns=grant.session_policy_arns,
    )


@dataclass
class Trail:
    """What is known so far about a decision, written as one audit event at the end."""

    event: str
    front_door: str
    client: str | None
    idp: str | None = None
    subject: str | None = None
    rule: str | None = None
    role: str | None = None
    access_key_id: str | None = None
    expiration: datetime | None = None

    def identity(self, identity: Identity) -> None:
        self.idp, self.subject = identity.idp, identity.subject

    def grant(self, grant: RoleGrant) -> None:
        self.rule, self.role = grant.rule, grant.arn

    def issued(self, creds: Credentials) -> None:
        self.access_key_id, self.expiration = creds.access_key_id, creds.expiration


@asynccontextmanager
async def audited(
    rt: Runtime, event: str, front_door: str, client: str | None
) -> AsyncIterator[Trail]:
    trail = Trail(event, front_door, client)
    try:
        yield trail
    except BrokerError as exc:
        exc.error_id = exc.error_id or new_error_id()
        rt.audit.record(outcome="refused", code=exc.code, error_id=exc.error_id, **_fields(trail))
        rt.metrics.decision(front_door, "refused", exc.code)
        raise
    rt.audit.record(outcome="granted", code="OK", **_fields(trail))
    rt.metrics.decision(front_door, "granted", "OK")


def _fields(t: Trail) -> dict[str, Any]:
    return {
        "event": t.event,
        "front_door": t.front_door,
        "client": t.client,
        "idp": t.idp,
        "subject": t.subject,
        "rule": t.rule,
        "role": t.role,
        "access_key_id": t.access_key_id,
        "expiration": t.expiration,
    }


def new_error_id() -> str:
    return secrets.token_hex(8)
