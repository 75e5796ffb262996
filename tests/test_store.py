"""The store's contract, the same for memory, one Redis, Redis Sentinel and Redis Cluster."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from broker.config import StoreSettings
from broker.errors import StoreUnavailable
from broker.store import MemoryStore, Store, open_store
from tests.peers.redis_cluster import RedisClusterSet
from tests.peers.redis_sentinel import SentinelSet


def _settings(request: pytest.FixtureRequest, prefix: str) -> StoreSettings:
    if request.param == "memory":
        return StoreSettings(key_prefix=prefix)
    if request.param == "redis":
        return StoreSettings(url=request.getfixturevalue("redis_url"), key_prefix=prefix)
    if request.param == "sentinel":
        s: SentinelSet = request.getfixturevalue("redis_sentinel")
        # Replay-cache writes wait for both replicas: the contract holds with WAIT in the path.
        return StoreSettings(
            sentinels=s.addresses, service_name=s.service, replica_acks=2, key_prefix=prefix
        )
    c: RedisClusterSet = request.getfixturevalue("redis_cluster")
    return StoreSettings(cluster_nodes=c.addresses, key_prefix=prefix)


_PEER = [pytest.mark.peers, pytest.mark.redis]


# Only the Redis halves need servers: the memory half stays a unit test.
@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=_PEER),
        pytest.param("sentinel", marks=_PEER),
        pytest.param("cluster", marks=_PEER),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    s = open_store(_settings(request, f"test-{secrets.token_hex(4)}:"))
    yield s
    await s.close()


@pytest.mark.anyio
async def test_add_is_set_if_absent(store: Store) -> None:
    assert await store.add("replay:1", b"x", ttl=30)
    assert not await store.add("replay:1", b"y", ttl=30)
    assert await store.get("replay:1") == b"x"


@pytest.mark.anyio
async def test_take_is_single_use(store: Store) -> None:
    await store.put("relay:1", b"/console", ttl=30)
    assert await store.take("relay:1") == b"/console"
    assert await store.take("relay:1") is None


@pytest.mark.anyio
async def test_concurrent_takes_hand_a_value_to_exactly_one(store: Store) -> None:
    """A one-time code redeemed twice at once: one request gets it, the other nothing."""
    await store.put("code:1", b"identity", ttl=30)
    got = await asyncio.gather(*(store.take("code:1") for _ in range(20)))
    assert got.count(b"identity") == 1
    assert got.count(None) == 19


@pytest.mark.anyio
async def test_entries_expire(store: Store) -> None:
    await store.put("short", b"v", ttl=0.2)
    assert await store.get("short") == b"v"
    await asyncio.sleep(0.35)
    assert await store.get("short") is None
    assert await store.add("short", b"again", ttl=5)


@pytest.mark.anyio
async def test_delete_and_ping(store: Store) -> None:
    await store.put("k", b"v", ttl=30)
    await store.delete("k")
    assert await store.get("k") is None
    assert await store.ping()


@pytest.mark.anyio
async def test_concurrent_adds_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.add("race", b"1", ttl=30) for _ in range(50)))
    assert results.count(True) == 1


@pytest.mark.anyio
async def test_unreachable_redis_is_not_ready() -> None:
    s = open_store(StoreSettings(url="redis://127.0.0.1:9/0"))
    assert not await s.ping()
    await s.close()


@pytest.mark.anyio
async def test_memory_store_refuses_to_grow_without_bound() -> None:
    s = MemoryStore(max_items=3)
    for i in range(3):
        await s.put(f"k{i}", b"v", ttl=30)
    with pytest.raises(StoreUnavailable):
        await s.put("k4", b"v", ttl=30)


@pytest.mark.anyio
async def test_redis_down_fails_closed_with_503() -> None:
    s = open_store(StoreSettings(url="redis://127.0.0.1:9/0"))
    with pytest.raises(StoreUnavailable):
        await s.add("replay:1", b"x", ttl=30)
    await s.close()
