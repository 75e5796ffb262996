"""What a running broker holds: config, pooled clients, store, verifiers, audit, metrics."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import httpx

from broker.audit import Audit
from broker.aws.sts import StsClient
from broker.clock import Clock
from broker.config import Config, ServerSettings
from broker.console_url.federation import Federation
from broker.exchange import Exchange
from broker.http.metrics import Metrics
from broker.oidc.verify import OidcVerifier
from broker.store import Store


@dataclass(frozen=True, slots=True)
class Runtime:
    """Opened once in the app's lifespan; every front door reads it, none adds to it."""

    config: Config
    sts: StsClient
    store: Store
    audit: Audit
    oidc: OidcVerifier
    http: httpx.AsyncClient
    federation: Federation
    metrics: Metrics
    exchange: Exchange
    # Signs cookies and seals session records: the current secret first, then those being
    # retired (they still verify and open). Resolved once, for every front door.
    secrets: tuple[bytes, ...]
    # What front doors read "now" from, rather than the system clock.
    clock: Clock


log = logging.getLogger(__name__)


def server_secrets(server: ServerSettings) -> tuple[bytes, ...]:
    """The configured secret then the ones being retired; with none configured, a random one:
    sessions and pending sign-ins then end when the process does and are not shared between
    replicas, so say so loudly."""
    secret = server.secret()
    if secret:
        return (secret, *server.previous_secrets())
    log.warning(
        "server.session_secret is not set: using a random one; browser sessions will not "
        "survive a restart or work across replicas"
    )
    return (secrets.token_bytes(32),)
