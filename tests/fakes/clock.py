"""Clocks a test moves by hand: what the STS protections read instead of time, and the
broker's own clock (broker.clock.Clock) a test moves ahead of the system's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Seconds, as time.monotonic() or time.time() would return them; moved only by advance()."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AheadClock:
    """A broker.clock.Clock: the system's time plus however far the test moved it. The wall
    time and the memory store's seconds move together (advance), or the wall time alone
    (advance_wall: a record the store still holds when its own expiry has passed)."""

    def __init__(self) -> None:
        self._wall = 0.0
        self._store = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._wall)

    def monotonic(self) -> float:
        return time.monotonic() + self._store

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._store += seconds

    def advance_wall(self, seconds: float) -> None:
        self._wall += seconds
