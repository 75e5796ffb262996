"""The picker's memories on each store backend: in memory and on a real Redis (one server and
a Cluster), sealed, found again by the next session, with their long TTL refreshed on use."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from broker.browser.memory import TTL_SECONDS, Picks, RoleMemory
from broker.config import StoreSettings
from broker.identity import Identity, NoProof
from broker.store import Store, open_store
from tests.peers.redis_cluster import RedisClusterSet

pytestmark = pytest.mark.anyio
KEY = b"k" * 32
READER = "arn:aws:iam::444455556666:role/reader"
ADMIN = "arn:aws:iam::111122223333:role/admin"
_PEER = [pytest.mark.peers, pytest.mark.redis]


def person() -> Identity:
    return Identity(
        protocol="saml",
        idp="corp",
        issuer="https://idp.example.com",
        subject=f"alice-{secrets.token_hex(4)}@example.com",
        attributes={},
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        proof=NoProof(),
    )


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=_PEER),
        pytest.param("cluster", marks=_PEER),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    prefix = f"test-{secrets.token_hex(4)}:"
    if request.param == "memory":
        settings = StoreSettings(key_prefix=prefix)
    elif request.param == "redis":
        settings = StoreSettings(url=request.getfixturevalue("redis_url"), key_prefix=prefix)
    else:
        cluster: RedisClusterSet = request.getfixturevalue("redis_cluster")
        settings = StoreSettings(cluster_nodes=cluster.addresses, key_prefix=prefix)
    s = open_store(settings)
    yield s
    await s.close()


async def test_a_new_session_finds_what_the_last_one_kept(store: Store) -> None:
    alice = person()
    await RoleMemory(store, [KEY]).opened(alice, READER)
    await RoleMemory(store, [KEY]).star(alice, ADMIN, True, {ADMIN, READER})
    # Another replica, or the same one later: only the secret is shared.
    again = RoleMemory(store, [KEY])
    assert await again.recall(alice) == Picks(recent=(READER,), favourites=(ADMIN,))
    unstarred = await again.star(alice, ADMIN, False, {ADMIN, READER})
    assert unstarred == Picks(recent=(READER,))
    assert await again.recall(alice) == unstarred


async def test_the_record_is_sealed(store: Store) -> None:
    alice = person()
    memory = RoleMemory(store, [KEY])
    await memory.opened(alice, READER)
    key = memory.keys(alice)[0]
    sealed = await store.get(key)
    assert sealed is not None
    assert READER.encode() not in sealed
    assert alice.subject.encode() not in sealed
    # Moved under another person's key, it opens for nobody.
    bob = person()
    await store.put(memory.keys(bob)[0], sealed, ttl=60)
    assert await memory.recall(bob) == Picks()


@pytest.mark.redis
@pytest.mark.peers
async def test_redis_keeps_the_record_90_days_from_the_last_use(redis_url: str) -> None:
    prefix = f"test-{secrets.token_hex(4)}:"
    store = open_store(StoreSettings(url=redis_url, key_prefix=prefix))
    raw = Redis.from_url(redis_url)
    try:
        alice = person()
        memory = RoleMemory(store, [KEY])
        await memory.star(alice, ADMIN, True, {ADMIN})
        key = prefix + memory.keys(alice)[0]
        assert TTL_SECONDS * 1000 - 60_000 < await raw.pttl(key) <= TTL_SECONDS * 1000
        await raw.pexpire(key, 60_000)
        await memory.opened(alice, READER)  # a use: the whole record lives on
        assert await raw.pttl(key) > TTL_SECONDS * 1000 - 60_000
        assert await memory.recall(alice) == Picks((READER,), (ADMIN,))
    finally:
        await raw.aclose()
        await store.close()
