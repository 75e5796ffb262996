"""Issuer mode at run time: a fresh signed assertion per credential request, and session lifetimes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from broker.aws.partitions import partition
from broker.config import Config, IssuerSettings
from broker.errors import BrokerError, SessionExpired
from broker.identity import Identity, RoleGrant, SamlAssertion
from broker.issuer.assertion import Subject, build_response
from broker.issuer.attributes import render
from broker.issuer.keys import KeyRing, load_keyring
from broker.issuer.xmlsig import Signer
from broker.mapping import map_roles


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AssertionIssuer:
    """DESIGN.md, "Two ways to reach AWS" (issuer): the upstream identity was verified once;
    for each request the broker signs its own short assertion, which goes to STS only: the
    proof this returns is handed to the STS client and never rendered, stored or logged."""

    def __init__(
        self, config: Config, keys: KeyRing, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        if config.issuer is None:
            raise BrokerError("issuer mode needs an issuer section")
        self._settings: IssuerSettings = config.issuer
        self._entity = config.issuer.entity(config.server.base_url)
        self._partition = partition(config.aws.partition)
        self._signer = Signer(keys)
        self._clock = clock

    @classmethod
    def from_config(
        cls, config: Config, *, clock: Callable[[], datetime] = _utcnow
    ) -> AssertionIssuer:
        assert config.issuer is not None
        return cls(config, load_keyring(config.issuer.signing_keys), clock=clock)

    @property
    def entity_id(self) -> str:
        return self._entity

    def proof(self, identity: Identity, grant: RoleGrant, duration: int) -> SamlAssertion:
        """Render and check the session attributes (a refusal here means no STS call), then sign."""
        if grant.via != "issuer" or grant.principal_arn is None:
            raise BrokerError("only a grant via issuer is redeemed with the broker's assertion")
        now = self._clock()
        end = identity.session_not_on_or_after
        if end is not None and end <= now:
            raise SessionExpired("The identity provider's session has ended; sign in again.")
        values = render(identity, grant, duration)
        subject = Subject(identity.subject, grant.arn, grant.principal_arn, end)
        response = build_response(
            issuer=self._entity,
            partition=self._partition,
            subject=subject,
            values=values,
            signer=self._signer,
            now=now,
        )
        return SamlAssertion(response)


def mint(
    issuer: AssertionIssuer | None, identity: Identity, grant: RoleGrant, duration: int
) -> SamlAssertion:
    """The issuance path's one call into issuer mode; without an issuer it fails closed."""
    if issuer is None:
        raise BrokerError("a grant via issuer, but this broker has no issuer")
    return issuer.proof(identity, grant, duration)


def broker_session_seconds(config: Config, identity: Identity, now: datetime) -> float | None:
    """For the browser: `session_seconds` when a rule grants this identity a role via issuer,
    else None (the proof it holds then bounds the session)."""
    if config.issuer is None or not any(
        g.via == "issuer" for g in map_roles(identity, config).grants
    ):
        return None
    return session_seconds(config, identity, now)


def session_seconds(config: Config, identity: Identity, now: datetime) -> float | None:
    """How long a broker session may mint credentials through the issuer for this identity:
    issuer.session_seconds, but never past the upstream IdP's SessionNotOnOrAfter when it set
    one. None without an issuer section (the proof's own lifetime then rules)."""
    if config.issuer is None:
        return None
    limit = float(config.issuer.session_seconds)
    if identity.session_not_on_or_after is not None:
        limit = min(limit, (identity.session_not_on_or_after - now).total_seconds())
    return limit
