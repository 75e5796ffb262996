"""The replay cache and sessions in one process's memory: one replica, one worker, tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from broker.errors import StoreUnavailable


class MemoryStore:
    """One process only: fine for a single replica and for tests."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_items: int = 100_000
    ) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._clock = clock
        self._max = max_items
        self._lock = asyncio.Lock()

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._data[key]
            return None
        return item[0]

    def _sweep(self) -> None:
        if len(self._data) >= self._max:
            now = self._clock()
            for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[k]
            if len(self._data) >= self._max:
                # Refuse to grow without bound rather than evict a replay-cache entry; a full
                # store is the store being unavailable (503), not a fault of the broker (500).
                raise StoreUnavailable(
                    "The broker's session store is full; try again shortly.",
                    log_detail=f"memory store full at {self._max} items",
                    headers={"Retry-After": "5"},
                )

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        async with self._lock:
            if self._live(key) is not None:
                return False
            self._sweep()
            self._data[key] = (value, self._clock() + ttl)
            return True

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        async with self._lock:
            self._sweep()
            self._data[key] = (value, self._clock() + ttl)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def take(self, key: str) -> bytes | None:
        async with self._lock:
            value = self._live(key)
            self._data.pop(key, None)
            return value

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()
