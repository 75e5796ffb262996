"""What a running broker holds: config, pooled clients, store, verifiers, audit, metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

from broker.audit import Audit
from broker.config import Config
from broker.oidc.verify import OidcVerifier
from broker.store import Store
from broker.sts import StsClient

if TYPE_CHECKING:
    from fastapi import FastAPI


class Metrics:
    """Prometheus metrics on a registry of the app's own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "broker_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "broker_decisions",
            "Decisions by front door, outcome and code",
            ["front_door", "outcome", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "broker_request_seconds",
            "Request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

        # Label children memoised: .labels() takes a lock and builds a key on every call.
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def decision(self, front_door: str, outcome: str, code: str) -> None:
        self._child(self.decisions, front_door, outcome, code).inc()

    def request(self, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, str(status)).inc()
        self._child(self.latency, route).observe(seconds)


@dataclass
class Runtime:
    config: Config
    sts: StsClient
    store: Store
    audit: Audit
    oidc: OidcVerifier
    http: httpx.AsyncClient
    metrics: Metrics = field(default_factory=Metrics)
    # Filled by the SAML front door when any SAML IdP is configured.
    extras: dict[str, Any] = field(default_factory=dict)


# A front door that needs startup work (SAML metadata, session keys) registers one of these.
StartupHook = Callable[[Runtime, "FastAPI"], Awaitable[None]]
