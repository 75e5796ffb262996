"""Trust policies for the AWS stand-in's roles, in the shape `broker setup trust-policy` prints them."""

from __future__ import annotations

from typing import Any

from broker.config import Config
from broker.setup.trust_policy import trust_policy
from broker_demo.aws import AwsStandIn

SAML = "sts:AssumeRoleWithSAML"
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
TAG_SESSION = "sts:TagSession"
SET_SOURCE_IDENTITY = "sts:SetSourceIdentity"


def statement(
    provider_arn: str, actions: list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": actions[0] if len(actions) == 1 else actions,
    }
    if condition:
        out["Condition"] = condition
    return out


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def saml_trust(
    provider_arn: str, acs_url: str | None = None, *, extra_actions: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Principal.Federated = the SAML provider; SAML:aud (the Recipient) = `acs_url` if given."""
    condition = {"StringEquals": {"SAML:aud": acs_url}} if acs_url else None
    return policy(statement(provider_arn, [SAML, *extra_actions], condition))


def web_identity_trust(
    provider_arn: str,
    audiences: list[str],
    *,
    subject_like: str | None = None,
    extra_actions: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Principal.Federated = the OIDC provider; `<provider>:aud` in `audiences`, and
    `<provider>:sub` like `subject_like` if given."""
    key = provider_arn.partition(":oidc-provider/")[2]
    condition: dict[str, Any] = {"StringEquals": {f"{key}:aud": audiences}}
    if subject_like is not None:
        condition["StringLike"] = {f"{key}:sub": subject_like}
    return policy(statement(provider_arn, [WEB_IDENTITY, *extra_actions], condition))


def register_configured_roles(
    standin: AwsStandIn, config: Config, *, idp: str | None = None, **max_sessions: int
) -> None:
    """Every role of the broker's config, with the trust policy `broker setup trust-policy
    --allow-any-subject` prints for it, and a MaxSessionDuration of at least what the config
    asks for (`max_sessions` overrides by role name)."""
    for name, role in config.roles.items():
        document = trust_policy(config, name, idp=idp, allow_any_subject=True).document
        wanted = max_sessions.get(name, max(3600, role.max_session_seconds or 3600))
        standin.register_role(role.arn, document, wanted)
