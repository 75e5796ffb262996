"""Short-lived shared state: replay cache, login state, browser sessions. Memory or Redis."""

from __future__ import annotations

from typing import Protocol

from broker.clock import SYSTEM_CLOCK, Clock
from broker.config import StoreSettings
from broker.store.memory import MemoryStore


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


def open_store(settings: StoreSettings, clock: Clock = SYSTEM_CLOCK) -> Store:
    """The configured store; reads the password files now, so a bad one stops startup. The
    memory store counts its entries' lives on `clock` (Redis on its own)."""
    if settings.is_memory():
        return MemoryStore(clock=clock.monotonic)
    from broker.store.redis import RedisStore  # memory-only deployments never import redis

    return RedisStore.open(settings)


__all__ = ["MemoryStore", "Store", "open_store"]
