"""Whether a verified federated caller may assume a role: the role exists, and its trust policy allows every action the call needs.

- troubleshoot_saml.md: AccessDenied "Not authorized to perform sts:AssumeRoleWithSAML" when the
  role does not exist, when the trust policy does not name the provider as
  `Principal.Federated` or its conditions are not met, and when the assertion carries session
  tags without `sts:TagSession` or a SourceIdentity without `sts:SetSourceIdentity` in the
  trust policy (also id_session-tags.md, id_credentials_temp_control-access_monitor.md).
- reference_policies_iam-condition-keys.md: the keys a trust policy can test. SAML: `saml:aud`
  (the SubjectConfirmationData Recipient, *not* the Audience), `saml:iss`, `saml:sub`,
  `saml:sub_type`, `saml:doc`, `saml:namequalifier`. OIDC: `<provider>:aud`, `:sub`, `:amr`,
  `:azp` where `<provider>` is the IAM provider's name (issuer host and path); for
  `accounts.google.com`, `:aud` is the `azp` claim when it is set and `:oaud` the `aud` claim.
- id_session-tags.md / monitor: `aws:RequestTag/<key>`, `aws:TagKeys`, `sts:TransitiveTagKeys`,
  `sts:SourceIdentity` are in the request when tags or a source identity are passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker_demo import samlassertion
from broker_demo.conditions import Context
from broker_demo.iam import Role
from broker_demo.limits import SessionTags
from broker_demo.state import Registry, StsFault
from broker_demo.webidentity import VerifiedToken

GOOGLE = "accounts.google.com"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks to assume a role, as the role's trust policy sees them."""

    action: str  # AssumeRoleWithSAML or AssumeRoleWithWebIdentity
    principal: str  # the provider ARN
    context: Context
    tags: SessionTags = field(default_factory=SessionTags)
    source_identity: str | None = None


def access_denied(action: str) -> StsFault:
    return StsFault("AccessDenied", f"Not authorized to perform sts:{action}", 403)


def _values(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in items if isinstance(v, str | int | float) and v != "")


def session_context(tags: SessionTags, source_identity: str | None) -> dict[str, tuple[str, ...]]:
    context: dict[str, tuple[str, ...]] = {}
    if source_identity is not None:
        context["sts:sourceidentity"] = (source_identity,)
    if tags:
        context["aws:tagkeys"] = tuple(k for k, _ in tags.tags)
        context |= {f"aws:requesttag/{k}".lower(): (v,) for k, v in tags.tags}
    if tags.transitive:
        context["sts:transitivetagkeys"] = tags.transitive
    return context


def saml_caller(
    assertion: samlassertion.VerifiedAssertion, provider_arn: str, account_id: str, name: str
) -> Caller:
    aws = assertion.aws
    return Caller(
        "AssumeRoleWithSAML",
        provider_arn,
        _saml_context(assertion, account_id, name) | session_context(aws.tags, aws.source_identity),
        aws.tags,
        aws.source_identity,
    )


def web_identity_caller(token: VerifiedToken) -> Caller:
    return Caller(
        "AssumeRoleWithWebIdentity",
        token.provider.arn,
        _web_identity_context(token) | session_context(token.tags, token.source_identity),
        token.tags,
        token.source_identity,
    )


def _saml_context(
    assertion: samlassertion.VerifiedAssertion, account_id: str, provider_name: str
) -> dict[str, tuple[str, ...]]:
    context: dict[str, tuple[str, ...]] = {
        "saml:iss": (assertion.issuer,),
        "saml:sub": (assertion.subject,),
        "saml:sub_type": (samlassertion.subject_type(assertion.subject_format),),
        "saml:doc": (f"{account_id}/{provider_name}",),
        "saml:namequalifier": (
            samlassertion.name_qualifier(assertion.issuer, account_id, provider_name),
        ),
    }
    if assertion.recipient:
        context["saml:aud"] = (assertion.recipient,)
    return context


def _web_identity_context(token: VerifiedToken) -> dict[str, tuple[str, ...]]:
    prefix = token.provider.path.lower()
    claims = token.claims
    context: dict[str, tuple[str, ...]] = {f"{prefix}:sub": (token.subject,)}
    audiences = _values(claims.get("aud"))
    if prefix == GOOGLE and isinstance(claims.get("azp"), str):
        context[f"{prefix}:aud"] = _values(claims["azp"])
        context[f"{prefix}:oaud"] = audiences
    elif audiences:
        context[f"{prefix}:aud"] = audiences
        if prefix == GOOGLE:
            context[f"{prefix}:oaud"] = audiences
    for claim in ("amr", "azp"):
        found = _values(claims.get(claim))
        if found and f"{prefix}:{claim}" not in context:
            context[f"{prefix}:{claim}"] = found
    return context


def authorize(
    registry: Registry, role_arn: str, caller: Caller, *, allow_unregistered: bool
) -> Role | None:
    """The registered role, once its trust policy allows the caller's action (and
    sts:TagSession, sts:SetSourceIdentity when needed). None only when `allow_unregistered`
    let an unknown role through; AccessDenied otherwise."""
    role = registry.role(role_arn)
    if role is None:
        if allow_unregistered:
            return None
        raise access_denied(caller.action)
    needed = [f"sts:{caller.action}"]
    if caller.tags:
        needed.append("sts:TagSession")
    if caller.source_identity is not None:
        needed.append("sts:SetSourceIdentity")
    if role.trust_policy.refused(caller.principal, needed, caller.context) is not None:
        raise access_denied(caller.action)
    return role
