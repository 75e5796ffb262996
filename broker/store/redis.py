"""The store on Redis (one server, Sentinel or Cluster), shared by every replica and worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from broker.config import StoreSettings
from broker.errors import StoreUnavailable
from broker.store.connect import connect


class Unacknowledged(Exception):
    """Fewer replicas than required acknowledged a replay-cache write in time."""


class RedisStore:
    """SET NX for replay, GETDEL for one-time values. A replay-cache write returns only once
    `acks` replicas hold it (WAIT), so a failover cannot promote a replica that never saw it.

    Every operation is bounded by `timeout` seconds, reconnects included; when Redis is down,
    slow or unacknowledged, requests that need it fail closed with 503, never a replay let
    through and never a hang. An assertion whose write went unacknowledged stays spent: the
    IdP must send a fresh one.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        prefix: str,
        *,
        acks: int = 0,
        ack_timeout: float = 0.5,
        timeout: float = 2.0,
        closers: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._acks = acks
        self._ack_ms = max(1, int(ack_timeout * 1000))
        self._timeout = timeout
        self._closers = closers or []

    @classmethod
    def open(cls, settings: StoreSettings) -> RedisStore:
        clients = connect(settings)
        return cls(
            clients.redis,
            settings.key_prefix,
            acks=settings.acks(),
            ack_timeout=settings.replica_ack_timeout_seconds,
            timeout=settings.timeout_seconds,
            closers=clients.closers,
        )

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        k, px = self._k(key), _ms(ttl)
        async with self._bounded():
            if self._acks == 0:
                return bool(await self._redis.set(k, value, px=px, nx=True))
            if isinstance(self._redis, RedisCluster):
                created, acked = await self._add_on_shard(self._redis, k, value, px)
            else:
                # WAIT counts the writes of its own connection: a pipeline keeps both on one.
                pipe = self._redis.pipeline(transaction=False)
                pipe.set(k, value, px=px, nx=True)
                pipe.execute_command("WAIT", self._acks, self._ack_ms)
                created, acked = await pipe.execute()
            if not created:
                return False  # a refusal need not be durable
            if int(acked) < self._acks:
                raise Unacknowledged(f"{acked} of {self._acks} replicas acknowledged")
            return True

    async def _add_on_shard(
        self, cluster: RedisCluster, k: str, value: bytes, px: int
    ) -> tuple[Any, Any]:
        await cluster.initialize()
        node = cluster.get_node_from_key(k)
        pipe = cluster.pipeline()
        pipe.set(k, value, px=px, nx=True)
        # Sent to the key's primary in the same batch, so on the connection that wrote it.
        pipe.execute_command("WAIT", self._acks, self._ack_ms, target_nodes=node)
        created, acked = await pipe.execute()
        if cluster.get_node_from_key(k) is not node:
            # The slot moved mid-write: the pipeline retried the SET elsewhere, so the
            # WAIT answer speaks for another connection. Not proven durable.
            raise Unacknowledged("slot moved during the write")
        return created, acked

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        async with self._bounded():
            await self._redis.set(self._k(key), value, px=_ms(ttl))

    async def get(self, key: str) -> bytes | None:
        async with self._bounded():
            value = await self._redis.get(self._k(key))
        return None if value is None else _bytes(value)

    async def take(self, key: str) -> bytes | None:
        async with self._bounded():
            value = await self._redis.getdel(self._k(key))
        return None if value is None else _bytes(value)

    async def delete(self, key: str) -> None:
        async with self._bounded():
            await self._redis.delete(self._k(key))

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._redis.ping())
        except Exception:  # any failure means "not ready"; the probe reports it
            return False

    async def close(self) -> None:
        await self._redis.aclose()
        for close in self._closers:
            await close()

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except (RedisError, OSError, TimeoutError, Unacknowledged) as exc:
            reason = str(exc) if isinstance(exc, Unacknowledged) else type(exc).__name__
            raise _unavailable(reason) from None
        except (RuntimeError, AttributeError) as exc:
            # redis-py's cluster client, reconnecting to a node that died, lets transport
            # errors of its own escape as these (bench/faults.py, "Redis Cluster node
            # killed"): the store is unavailable, which is a 503, not a fault of ours.
            raise _unavailable(f"{type(exc).__name__} while reconnecting") from None


def _unavailable(reason: str) -> StoreUnavailable:
    return StoreUnavailable(
        "The broker's session store is unavailable; try again shortly.",
        log_detail=f"redis: {reason}",
        headers={"Retry-After": "5"},
    )


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
