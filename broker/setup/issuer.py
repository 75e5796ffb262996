"""Issuer mode in IAM: the broker's SAML provider, its roles' trust policy, and the bypass check.

Rotating the signing key, with no moment when AWS refuses the broker's assertions:
  1. publish: add the next key second in `issuer.signing_keys`, restart, then
     `broker setup saml-provider --issuer --account ID --apply` in every account (IAM now
     trusts both certificates);
  2. switch: move the next key first (it signs from now on), restart;
  3. retire: after five minutes (nothing the old key signed can still be redeemed), remove
     the old key, restart, and run step 1's command again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.aws.partitions import partition
from broker.config import Config
from broker.errors import ConfigError
from broker.issuer.metadata import broker_metadata
from broker.setup import SetupError
from broker.setup.enforcement import names
from broker.setup.iam import Plan

EXPIRY_WARNING = timedelta(days=30)


def issuer_policy(config: Config, role_name: str) -> dict[str, Any]:
    """IAM User Guide, "Configure a SAML 2.0 IdP with relying party trust and adding claims" /
    the SAML trust policy: Federated is the broker's provider in the role's account, and
    `SAML:aud` the sign-in SAML endpoint the broker's assertions name as Recipient. The session
    actions are allowed only when the role's assertions carry tags or a SourceIdentity."""
    role = config.roles[role_name]
    if config.issuer is None:
        raise SetupError(f"role {role_name!r} is via issuer, but there is no issuer section")
    part = role.arn.split(":")[1]
    actions = ["sts:AssumeRoleWithSAML"]
    if role.session_tags:
        actions.append("sts:TagSession")
    if role.source_identity is not None:
        actions.append("sts:SetSourceIdentity")
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": config.issuer.provider_arn(part, role.account_id)},
        "Action": actions[0] if len(actions) == 1 else actions,
        "Condition": {"StringEquals": {"SAML:aud": partition(part).saml_endpoint}},
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def issuer_metadata(config: Config) -> tuple[str, bytes]:
    """The provider name and metadata `setup saml-provider --issuer` registers."""
    if config.issuer is None:
        raise SetupError("the configuration has no issuer section")
    return config.issuer.provider_name, broker_metadata(config)


def check_account(plan: Plan, account: str | None) -> None:
    """IAM is reached with whatever credentials the chain finds: make sure they are for the
    account the operator meant."""
    if account is not None and plan.arn is not None and plan.arn.split(":")[4] != account:
        plan.errors.append(
            f"the credentials are for account {plan.arn.split(':')[4]}, not {account}"
        )
    elif account is not None and plan.arn is None:
        plan.notes.append(f"will be created in account {account} as saml-provider/{plan.target}")


def bypass_findings(config: Config, now: datetime | None = None) -> Iterator[tuple[str, str, str]]:
    """(level, where, message) for `broker config check`. DESIGN.md, "Two ways to reach AWS":
    issuer mode makes the broker's rules binding only if no IdP's own proof can reach the role."""
    if config.issuer is None:
        return
    yield from _certificates(config, now or datetime.now(UTC))
    by_arn: dict[str, list[str]] = {}
    for name, role in config.roles.items():
        by_arn.setdefault(role.arn, []).append(name)
    for name, role in config.roles.items():
        if config.via_of(role) != "issuer":
            continue
        where = f"roles.{name}"
        twins = [n for n in by_arn[role.arn] if config.via_of(config.roles[n]) == "idp"]
        if twins:
            yield (
                "warning",
                where,
                f"the same role is also reached via idp as roles.{twins[0]}: its trust policy "
                "then trusts an IdP's provider too, and that IdP's proof could be redeemed for "
                "it directly, bypassing the broker's rules",
            )
        for idp in _idp_providers_in(config, role.account_id):
            yield (
                "warning",
                where,
                f"account {role.account_id} also trusts IdP {idp!r}'s provider: if this role's "
                "trust policy names it, the IdP's own assertion or token is redeemable for the "
                "role without the broker; trust only the broker's provider "
                f"(`broker setup trust-policy --role {name}`; `setup plan` shows drift)",
            )


def _idp_providers_in(config: Config, account: str) -> list[str]:
    """IdPs whose IAM provider the config puts in `account`: a pass-through role there uses it."""
    out = []
    for idp_name in config.identity_providers:
        passthrough = any(
            r.account_id == account
            and config.via_of(r) == "idp"
            and any(
                rule.idp in ("*", idp_name) and names(rule.grant, n, r.arn) for rule in config.rules
            )
            for n, r in config.roles.items()
        )
        if passthrough:
            out.append(idp_name)
    return out


def _certificates(config: Config, now: datetime) -> Iterator[tuple[str, str, str]]:
    from broker.issuer.keys import certificates, load_keyring

    assert config.issuer is not None
    try:
        load_keyring(config.issuer.signing_keys)
        certs = certificates(config.issuer.signing_keys)
    except ConfigError as exc:
        yield ("error", "issuer.signing_keys", exc.detail)
        return
    for i, cert in enumerate(certs):
        where = f"issuer.signing_keys[{i}]"
        if cert.not_after <= now:
            yield ("error", where, f"certificate {cert.subject} expired {cert.not_after:%Y-%m-%d}")
        elif cert.not_after - now < EXPIRY_WARNING:
            yield (
                "warning",
                where,
                f"certificate {cert.subject} expires {cert.not_after:%Y-%m-%d}: rotate "
                "(publish the next key, switch, retire; see `broker setup saml-provider --issuer`)",
            )
