"""Token buckets per (account, Region) in front of STS: refuse before STS starts throttling."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; one token per STS request. The same
    algorithm STS throttles with, so a bucket set under STS's quota refuses first."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> float:
        """0.0 when a token was taken; otherwise the seconds until one will be there."""
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class AccountLimiter:
    """One bucket per (account, Region). STS's quota is the account's, whichever caller
    spends it: for the unsigned AssumeRoleWith* calls, the account that owns the role.

    At most `max_keys` buckets: the least recently used goes first (it has most likely
    refilled; a forgotten bucket starts again full, which errs by one burst at most)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def take(self, account: str, region: str) -> float:
        """0.0 when the call may go to STS now; else the seconds to wait before trying again."""
        now = self._clock()
        key = (account, region)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1 (RFC 9110 §10.2.3)."""
    return str(max(1, math.ceil(seconds)))
