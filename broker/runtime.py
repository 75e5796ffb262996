"""What a running broker holds: config, pooled clients, store, verifiers, audit, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from broker.audit import Audit
from broker.aws.sts import StsClient
from broker.config import Config
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
    metrics: Metrics
    exchange: Exchange
