"""The one issuance path every endpoint calls: identity and role choice in, credentials out."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.audit import Trail
from broker.aws.arn import clamp_duration
from broker.aws.cache import CredentialsCache
from broker.aws.observer import StsObserver, Unobserved
from broker.aws.sts import StsClient, sts_request
from broker.config import Config
from broker.errors import (
    NoRoleGranted,
    ReauthenticationRequired,
    RoleNotGranted,
    RoleSelectionRequired,
)
from broker.identity import Identity, Issued, Proof, RoleGrant
from broker.issuer.mint import AssertionIssuer, mint
from broker.mapping import Decision, map_roles


class Exchange:
    """Map → choose → STS, recorded on the caller's audit trail. Nothing here knows which
    protocol the identity came in with: its proof names the STS call that redeems it."""

    def __init__(
        self,
        config: Config,
        sts: StsClient,
        issuer: AssertionIssuer | None = None,
        *,
        observer: StsObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._sts = sts
        self._issuer = issuer
        self._clock = clock
        self._observer: StsObserver = observer or Unobserved()
        aws = config.aws
        self._cache = (
            CredentialsCache(
                size=aws.container_cache_size,
                max_age=aws.container_cache_max_age_seconds,
                min_remaining=aws.container_cache_min_remaining_seconds,
                clock=clock,
            )
            if aws.container_cache
            else None
        )

    def decide(self, identity: Identity) -> Decision:
        return map_roles(identity, self._config)

    def grant(self, identity: Identity, role: str | None, trail: Trail) -> RoleGrant:
        """The role the caller asked for, if a rule grants it (or the only one granted)."""
        grant = choose(self.decide(identity), role, self._config.role_arns)
        trail.grant(grant)
        return grant

    def _check_redeemable(self, identity: Identity) -> None:
        """STS redeems a SAML assertion only within 5 minutes of its IssueInstant
        (ExpiredTokenException otherwise): past that, no call; the person signs in again."""
        deadline = redemption_deadline(identity, self._config)
        if deadline is not None and datetime.fromtimestamp(self._clock(), UTC) >= deadline:
            raise ReauthenticationRequired(
                "Your sign-in is older than AWS accepts for this role; sign in again.",
                log_detail=f"the IdP's proof is past its redemption window (idp={identity.idp})",
            )

    async def issue(
        self,
        identity: Identity,
        role: str | None,
        trail: Trail,
        *,
        duration: int | None = None,
        reuse: bool = False,
    ) -> Issued:
        """`reuse`: credentials issued before for the very same STS request may be served
        again (the container endpoint; see broker/aws/cache.py). The rules decide first
        either way."""
        grant = self.grant(identity, role, trail)
        seconds = clamp_duration(duration, grant.max_session_seconds)
        if grant.via == "idp":
            proof: Proof = identity.proof
            self._check_redeemable(identity)
        else:  # via issuer: the broker's own assertion, built here for STS only
            proof = mint(self._issuer, identity, grant, seconds)
        request = sts_request(
            proof.sts_call(grant),
            duration=seconds,
            policy=grant.session_policy,
            policy_arns=grant.session_policy_arns,
        )
        cache = self._cache if reuse else None
        if cache is not None:
            cached, result = cache.get(request.key)
            self._observer.container_cache(result)
            if cached is not None:
                trail.issued(cached)
                return Issued(grant, cached)
        creds = await self._sts.send(request)
        if cache is not None:
            cache.put(request.key, creds, identity.expires_at)
        trail.issued(creds)
        return Issued(grant, creds)


def redemption_deadline(identity: Identity, config: Config) -> datetime | None:
    """When the identity's own proof stops being redeemable at STS (pass-through SAML: the
    redemption window after its IssueInstant; a person's ID token: its expiry), less a margin
    for the trip to STS."""
    window = config.aws.saml_redemption_seconds
    until = identity.proof.redeemable_until(window)
    return None if until is None else until - timedelta(seconds=window * _MARGIN)


# Re-authenticate this share of the window early, so the proof still reaches STS in time.
_MARGIN = 0.1


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
