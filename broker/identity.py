"""The values that flow through the broker: who someone is, what they may assume, what they got."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Protocol = Literal["oidc", "saml"]


@dataclass(frozen=True, slots=True)
class SignedRole:
    """A role/provider pair the IdP signed into a SAML assertion's Role attribute."""

    role_arn: str
    principal_arn: str


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified proof of identity. Produced only by a verifier; nothing after mapping
    knows which protocol it came from, except through `signed_roles` and `proof`."""

    protocol: Protocol
    idp: str  # the configured identity provider's name
    issuer: str
    subject: str
    # OIDC claims, or SAML attributes (name -> list of values).
    attributes: Mapping[str, Any]
    expires_at: datetime
    # The raw JWT or base64 SAMLResponse, passed to STS unchanged. Never logged.
    proof: str = field(repr=False)
    # SAML only: the pairs STS will accept; empty for OIDC.
    signed_roles: tuple[SignedRole, ...] = ()
    # SAML only: AWS attributes that shape the session (RoleSessionName, SessionDuration…).
    session_name: str | None = None
    session_duration: int | None = None
    session_not_on_or_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """A role an identity may assume, and the rule that granted it."""

    name: str
    arn: str
    account_id: str
    account_name: str | None
    max_session_seconds: int
    rule: str
    session_policy: str | None = None
    session_policy_arns: tuple[str, ...] = ()
    # SAML only: the IdP's provider ARN to pass as PrincipalArn.
    principal_arn: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """Temporary AWS credentials returned by STS."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    assumed_role_arn: str
    assumed_role_id: str = ""

    def expiration_iso(self) -> str:
        return self.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
