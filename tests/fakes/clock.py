"""A clock a test moves by hand: what the STS protections read instead of time."""

from __future__ import annotations


class Clock:
    """Seconds, as time.monotonic() or time.time() would return them; moved only by advance()."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
