"""What the STS protections report, as a protocol: /metrics implements it, broker/aws never
imports the web side."""

from __future__ import annotations

from typing import Literal, Protocol

CacheResult = Literal["hit", "miss", "stale"]


class StsObserver(Protocol):
    def sts_joined(self) -> None:
        """A request joined an identical call already in flight instead of making its own."""

    def sts_rate_limited(self, account: str, region: str) -> None:
        """The per-(account, Region) limit refused a call before it reached STS."""

    def sts_breaker(self, endpoint: str, state: str, *, changed: bool = True) -> None:
        """The endpoint's circuit breaker moved to `state` (closed, open, half_open); or,
        `changed=False`, the state it starts in."""

    def sts_breaker_refused(self, endpoint: str) -> None:
        """The breaker failed a call fast, without a network call."""

    def container_cache(self, result: CacheResult) -> None:
        """A container-credentials lookup: served from the cache, or not (and why)."""


class Unobserved:
    """The observer when nobody watches (tests, `broker explain`)."""

    def sts_joined(self) -> None:
        return None

    def sts_rate_limited(self, account: str, region: str) -> None:
        return None

    def sts_breaker(self, endpoint: str, state: str, *, changed: bool = True) -> None:
        return None

    def sts_breaker_refused(self, endpoint: str) -> None:
        return None

    def container_cache(self, result: CacheResult) -> None:
        return None
