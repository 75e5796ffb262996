"""Prometheus metrics on a registry of the app's own (several apps may share a process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


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
