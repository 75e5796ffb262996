"""The values that flow through the broker: who someone is, what they may assume, what they got."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from broker.errors import BrokerError

Protocol = Literal["oidc", "saml"]
Via = Literal["issuer", "idp"]
StsAction = Literal["AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"]


@dataclass(frozen=True, slots=True)
class SignedRole:
    """A role/provider pair the IdP signed into a SAML assertion's Role attribute."""

    role_arn: str
    principal_arn: str


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
    # SAML: the provider ARN to pass as PrincipalArn (the IdP's, or the broker's via issuer).
    principal_arn: str | None = None
    # Issuer mode: STS redeems the broker's own assertion, which carries these templates
    # rendered over the identity (tag key → template; transitive keys; SourceIdentity).
    via: Via = "idp"
    session_tags: tuple[tuple[str, str], ...] = ()
    transitive_tags: tuple[str, ...] = ()
    source_identity: str | None = None


@dataclass(frozen=True, slots=True)
class StsCall:
    """One unsigned STS request a proof makes for a grant: the action and its parameters
    (DurationSeconds and session policies are added by the issuance path)."""

    action: StsAction
    params: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class SamlAssertion:
    """A verified base64 SAMLResponse, redeemed with AssumeRoleWithSAML. Never logged."""

    response: str = field(repr=False)
    # The older of the Response's and the Assertion's IssueInstant: STS redeems a SAML
    # assertion only within 5 minutes of it (aws.saml_redemption_seconds).
    issued_at: datetime | None = None

    def redeemable_until(self, window_seconds: float) -> datetime | None:
        if self.issued_at is None:
            return None
        return self.issued_at + timedelta(seconds=window_seconds)

    def sts_call(self, grant: RoleGrant) -> StsCall:
        if grant.principal_arn is None:
            raise BrokerError("a SAML grant without the provider ARN the IdP signed")
        params = {
            "RoleArn": grant.arn,
            "PrincipalArn": grant.principal_arn,
            "SAMLAssertion": self.response,
        }
        return StsCall("AssumeRoleWithSAML", params)


@dataclass(frozen=True, slots=True)
class WebIdentityToken:
    """A verified OIDC JWT, redeemed with AssumeRoleWithWebIdentity. Never logged."""

    token: str = field(repr=False)
    # RoleSessionName, decided by the verifier from the IdP's template (STS-safe).
    session_name: str
    # A person's ID token, kept by a browser session that may outlive it (issuer mode): STS
    # refuses it after its `exp`, so the person signs in again then. None for a program's
    # token, redeemed right after it is verified.
    expires_at: datetime | None = None

    def redeemable_until(self, window_seconds: float) -> datetime | None:
        return self.expires_at

    def sts_call(self, grant: RoleGrant) -> StsCall:
        params = {
            "RoleArn": grant.arn,
            "RoleSessionName": self.session_name,
            "WebIdentityToken": self.token,
        }
        return StsCall("AssumeRoleWithWebIdentity", params)


@dataclass(frozen=True, slots=True)
class NoProof:
    """An identity described for `broker explain`: it can be mapped, never exchanged."""

    def redeemable_until(self, window_seconds: float) -> datetime | None:
        return None

    def sts_call(self, grant: RoleGrant) -> StsCall:
        raise BrokerError("an identity without a proof cannot be exchanged for credentials")


Proof = SamlAssertion | WebIdentityToken | NoProof


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified proof of identity. Produced only by a verifier; after role mapping nothing
    looks at the protocol: the proof knows which STS call redeems it."""

    protocol: Protocol
    idp: str  # the configured identity provider's name
    issuer: str
    subject: str
    # OIDC claims, or SAML attributes (name -> list of values).
    attributes: Mapping[str, Any]
    expires_at: datetime
    proof: Proof = field(repr=False)
    # SAML only: the pairs STS will accept; empty for OIDC.
    signed_roles: tuple[SignedRole, ...] = ()
    # SAML only: AWS attributes that shape the session (RoleSessionName, SessionDuration…).
    session_name: str | None = None
    session_duration: int | None = None
    session_not_on_or_after: datetime | None = None


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


@dataclass(frozen=True, slots=True)
class Issued:
    """What the issuance path hands back: the grant it chose and the credentials STS gave."""

    grant: RoleGrant
    credentials: Credentials
