"""Short-lived shared state: replay cache, login state, browser sessions. Memory or Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from broker.config import StoreSettings
from broker.errors import StoreUnavailable


class Store(Protocol):
    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set `key` only if absent; False if it was already there (replay)."""

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def take(self, key: str) -> bytes | None:
        """Get and delete in one step, so a one-time value is used at most once."""

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


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


class RedisStore:
    """Shared by every replica: SET NX for replay, GETDEL for one-time values. When Redis is
    down, requests that need it fail closed with 503 (never a replay let through)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis  # imported here: memory-only deployments never need it

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        async with _unavailable():
            return bool(
                await self._redis.set(self._k(key), value, px=max(1, int(ttl * 1000)), nx=True)
            )

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        async with _unavailable():
            await self._redis.set(self._k(key), value, px=max(1, int(ttl * 1000)))

    async def get(self, key: str) -> bytes | None:
        async with _unavailable():
            value = await self._redis.get(self._k(key))
        return None if value is None else _bytes(value)

    async def take(self, key: str) -> bytes | None:
        async with _unavailable():
            value = await self._redis.getdel(self._k(key))
        return None if value is None else _bytes(value)

    async def delete(self, key: str) -> None:
        async with _unavailable():
            await self._redis.delete(self._k(key))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:  # any failure means "not ready"; the probe reports it
            return False

    async def close(self) -> None:
        await self._redis.aclose()


@asynccontextmanager
async def _unavailable() -> AsyncIterator[None]:
    from redis.exceptions import RedisError

    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(
            "The broker's session store is unavailable; try again shortly.",
            log_detail=f"redis: {type(exc).__name__}",
            headers={"Retry-After": "5"},
        ) from None


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def open_store(settings: StoreSettings) -> Store:
    if settings.url == "memory://":
        return MemoryStore()
    return RedisStore(settings.url, settings.key_prefix)
