"""The clock a running broker reads: the system's, or one a caller passes to create_app."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time in UTC: what the expiries a record keeps, or a client is told, are in."""

    def monotonic(self) -> float:
        """Seconds that never go back: what the memory store counts its entries' lives in."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
