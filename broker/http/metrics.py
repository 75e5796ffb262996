"""Prometheus metrics on a registry of the app's own (several apps may share a process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "broker_http_requests",
            "HTTP requests by route template and status",
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
            "Request latency by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # STS protections (broker/aws): they report through these methods (StsObserver).
        self.sts_joins = Counter(
            "broker_sts_single_flight_joins",
            "Requests that shared an identical STS call already in flight",
            registry=self.registry,
        )
        self.sts_limit_refusals = Counter(
            "broker_sts_rate_limited",
            "STS calls refused by the per-(account, region) limit before reaching STS",
            ["account", "region"],
            registry=self.registry,
        )
        self.sts_breaker_state = Gauge(
            "broker_sts_breaker_state",
            "STS circuit breaker per endpoint: 0 closed, 1 half-open, 2 open",
            ["endpoint"],
            registry=self.registry,
        )
        self.sts_breaker_transitions = Counter(
            "broker_sts_breaker_transitions",
            "STS circuit breaker state changes, by the state entered",
            ["endpoint", "state"],
            registry=self.registry,
        )
        self.sts_breaker_refusals = Counter(
            "broker_sts_breaker_refusals",
            "STS calls failed fast by an open circuit breaker, without a network call",
            ["endpoint"],
            registry=self.registry,
        )
        self.container_cache_lookups = Counter(
            "broker_container_cache_lookups",
            "Container-credentials cache lookups: hit, miss or stale",
            ["result"],
            registry=self.registry,
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

    def sts_joined(self) -> None:
        self.sts_joins.inc()

    def sts_rate_limited(self, account: str, region: str) -> None:
        self._child(self.sts_limit_refusals, account, region).inc()

    def sts_breaker(self, endpoint: str, state: str, *, changed: bool = True) -> None:
        self._child(self.sts_breaker_state, endpoint).set(_BREAKER_STATES[state])
        if changed:
            self._child(self.sts_breaker_transitions, endpoint, state).inc()

    def sts_breaker_refused(self, endpoint: str) -> None:
        self._child(self.sts_breaker_refusals, endpoint).inc()

    def container_cache(self, result: str) -> None:
        self._child(self.container_cache_lookups, result).inc()


_BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
