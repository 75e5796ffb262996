"""The store under failure: failovers keep replay entries, dead or silent peers give a bounded
StoreUnavailable (503), never a hang, never another error; TLS and ACL auth."""

from __future__ import annotations

import asyncio
import gc
import itertools
import secrets
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.config import StoreSettings
from broker.errors import ConfigError, StoreUnavailable
from broker.store import Store, open_store
from tests.peers.redis_cluster import RedisClusterSet
from tests.peers.redis_sentinel import SentinelSet
from tests.peers.redis_tls import USER, TlsRedis

pytestmark = [pytest.mark.anyio, pytest.mark.peers, pytest.mark.redis]

# The test's own guard against a hang: well above every store timeout used here.
HANG = 10
FAST: dict[str, Any] = {"timeout_seconds": 0.5, "replica_ack_timeout_seconds": 0.2}


def prefix() -> str:
    return f"test-{secrets.token_hex(4)}:"


async def refused(op: Callable[[], object]) -> StoreUnavailable:
    """`op` fails with StoreUnavailable, within the guard."""
    async with asyncio.timeout(HANG):
        with pytest.raises(StoreUnavailable) as caught:
            await op()  # type: ignore[misc]
    assert caught.value.status == 503
    return caught.value


@pytest.fixture
def dropped_cluster_nodes() -> Iterator[None]:
    """redis-py's cluster client, re-reading the topology of a cluster that has lost a shard,
    drops ClusterNode objects without closing their connections (the failed refresh's
    traceback holds them); collect them after the test so their ResourceWarning is not
    charged to whichever test runs next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def eventually(op: Callable[[], object], seconds: float = 30) -> object:
    """Retry `op` while the store is unavailable (a failover in progress), bounded."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                return await op()  # type: ignore[misc]
            except StoreUnavailable:
                await asyncio.sleep(0.2)


async def test_sentinel_failover_keeps_replay_entries_and_sessions(
    sentinel_factory: Callable[[], SentinelSet],
) -> None:
    s = await asyncio.to_thread(sentinel_factory)
    store = open_store(
        StoreSettings(
            sentinels=s.addresses, service_name=s.service, key_prefix=prefix(), timeout_seconds=1
        )
    )
    try:
        await store.put("session:alice", b"alice's session", ttl=300)
        assert await store.add("replay:assertion-1", b"1", ttl=300)

        old = s.kill_master()
        # Before a replica is promoted: a bounded 503, not a hang and not an acceptance.
        await refused(lambda: store.add("replay:assertion-2", b"1", ttl=300))
        new = await asyncio.to_thread(s.wait_promoted, old)
        assert new != old

        assert not await eventually(lambda: store.add("replay:assertion-1", b"1", ttl=300))
        assert await store.get("session:alice") == b"alice's session"
        # Once sentinel has pointed the surviving replica at the new master, new entries are
        # acknowledged again (a fresh key per try: an unacknowledged one stays spent).
        fresh = (f"replay:assertion-3-{n}" for n in itertools.count())
        assert await eventually(lambda: store.add(next(fresh), b"1", ttl=300))
        assert await store.ping()
    finally:
        await store.close()


async def test_unacknowledged_replay_entry_fails_closed(redis_url: str) -> None:
    """A single server has no replica to acknowledge: the write is refused, never accepted."""
    store = open_store(
        StoreSettings(
            url=redis_url, key_prefix=prefix(), replica_acks=1, replica_ack_timeout_seconds=0.1
        )
    )
    try:
        err = await refused(lambda: store.add("replay:1", b"1", ttl=30))
        assert err.log_detail == "redis: 0 of 1 replicas acknowledged"
        assert not await store.add("replay:1", b"1", ttl=30)  # the assertion stays spent
    finally:
        await store.close()


@pytest.fixture
async def cluster_store(redis_cluster: RedisClusterSet) -> AsyncIterator[Store]:
    store = open_store(StoreSettings(cluster_nodes=redis_cluster.addresses, key_prefix=prefix()))
    yield store
    await store.close()


async def test_cluster_keys_spread_over_every_shard(
    cluster_store: Store, redis_cluster: RedisClusterSet
) -> None:
    keys = [f"replay:{i}" for i in range(30)]
    owners = {redis_cluster.owner(f"{k}") for k in keys}
    assert len(owners) == 3  # the keys land on all three masters
    for k in keys:
        assert await cluster_store.add(k, b"1", ttl=30)  # acknowledged by the shard's replica
        assert not await cluster_store.add(k, b"1", ttl=30)
        await cluster_store.put(k + ":s", b"v", ttl=30)
        assert await cluster_store.take(k + ":s") == b"v"


@pytest.mark.usefixtures("dropped_cluster_nodes")
async def test_cluster_failover_keeps_replay_entries_then_a_lost_shard_is_503(
    cluster_factory: Callable[..., RedisClusterSet],
) -> None:
    c = await asyncio.to_thread(cluster_factory)
    p = prefix()
    store = open_store(StoreSettings(cluster_nodes=c.addresses, key_prefix=p, timeout_seconds=1))
    try:
        await store.put("session:alice", b"alice's session", ttl=300)
        assert await store.add("replay:a", b"1", ttl=300)
        old = c.owner(p + "replay:a")
        c.kill(old)
        await refused(lambda: store.get("replay:a"))

        assert not await eventually(lambda: store.add("replay:a", b"1", ttl=300))
        assert c.owner(p + "replay:a") != old
        assert await store.get("session:alice") == b"alice's session"

        # Now that shard has no replica left: kill its master and the shard is gone.
        c.kill(c.owner(p + "replay:a"))
        for _ in range(3):
            await refused(lambda: store.add("replay:a", b"1", ttl=300))
            await refused(lambda: store.get("replay:a"))
        async with asyncio.timeout(HANG):
            await store.ping()  # answers, true or false, without raising
    finally:
        await store.close()


@pytest.mark.usefixtures("dropped_cluster_nodes")
async def test_cluster_without_replicas_answers_503_for_a_dead_node(
    cluster_factory: Callable[..., RedisClusterSet],
) -> None:
    c = await asyncio.to_thread(lambda: cluster_factory(replicas=False))
    p = prefix()
    # No replicas, so nothing could acknowledge: the operator says so explicitly.
    store = open_store(
        StoreSettings(cluster_nodes=c.addresses, key_prefix=p, replica_acks=0, timeout_seconds=1)
    )
    try:
        keys = [f"k{i}" for i in range(12)]
        for k in keys:
            assert await store.add(k, b"1", ttl=60)
        dead = c.owner(p + keys[0])
        c.kill(dead)
        await refused(lambda: store.get(keys[0]))
        for k in keys:  # every op either works or is a 503, never anything else
            try:
                async with asyncio.timeout(HANG):
                    await store.get(k)
            except StoreUnavailable:
                pass
        await refused(lambda: store.add(keys[0], b"1", ttl=60))
    finally:
        await store.close()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A bad neighbour: accepts TCP connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("topology", ["url", "sentinels", "cluster_nodes"])
async def test_a_silent_store_gets_a_bounded_wait_and_503(
    silent_server: str, topology: str
) -> None:
    settings = {
        "url": StoreSettings(url=f"redis://{silent_server}/0", **FAST),
        "sentinels": StoreSettings(sentinels=[silent_server], service_name="broker", **FAST),
        "cluster_nodes": StoreSettings(cluster_nodes=[silent_server], **FAST),
    }[topology]
    store = open_store(settings)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await refused(lambda: store.add("replay:1", b"1", ttl=30))
        await refused(lambda: store.get("session:1"))
        await refused(lambda: store.put("session:1", b"v", ttl=30))
        await refused(lambda: store.take("relay:1"))
        await refused(lambda: store.delete("relay:1"))
        async with asyncio.timeout(HANG):
            assert not await store.ping()
        # Six operations, each cut at its 0.5 s deadline.
        assert loop.time() - started < 6 * 0.5 + 2
    finally:
        await store.close()


async def test_tls_and_acl_user(redis_tls: TlsRedis) -> None:
    """Every store operation works for an ACL user allowed only what the store needs."""
    store = open_store(
        StoreSettings(
            url=redis_tls.url,
            ca_file=redis_tls.ca_file,
            username=USER,
            password_file=redis_tls.password_file,
        )
    )
    key = f"replay:{secrets.token_hex(4)}"
    try:
        assert await store.ping()
        assert await store.add(key, b"1", ttl=30)
        assert not await store.add(key, b"1", ttl=30)
        await store.put(key + ":s", b"v", ttl=30)
        assert await store.get(key + ":s") == b"v"
        assert await store.take(key + ":s") == b"v"
        await store.delete(key)
    finally:
        await store.close()


async def test_tls_server_not_signed_by_the_ca_is_refused(redis_tls: TlsRedis) -> None:
    """Certificate checks are pinned on: without our CA, the system trust store refuses it."""
    store = open_store(
        StoreSettings(url=redis_tls.url, username=USER, password_file=redis_tls.password_file)
    )
    try:
        await refused(lambda: store.get("k"))
    finally:
        await store.close()


async def test_wrong_password_is_503_and_never_echoed(redis_tls: TlsRedis, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password-" + secrets.token_hex(8))
    store = open_store(
        StoreSettings(
            url=redis_tls.url, ca_file=redis_tls.ca_file, username=USER, password_file=wrong
        )
    )
    try:
        err = await refused(lambda: store.get("k"))
        secret = wrong.read_text()
        assert secret not in f"{err} {err.detail} {err.log_detail} {err!r}"
        assert secret not in repr(store)
        assert not await store.ping()
    finally:
        await store.close()


def test_unreadable_password_file_stops_startup(tmp_path: Path) -> None:
    settings = StoreSettings(url="redis://127.0.0.1:9/0", password_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"store.password_file: cannot read"):
        open_store(settings)
