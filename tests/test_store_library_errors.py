"""Whatever the Redis client raises inside a store call is the store being unavailable: a 503
with a stable code, never a 500 (bench/faults.py saw RuntimeError and AttributeError escape
redis-py's cluster client while it reconnected to a killed node)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from broker.errors import StoreUnavailable
from broker.store.redis import RedisStore

pytestmark = pytest.mark.anyio


class Escaping:
    """Stands for redis-py's client mid-reconnect: every command raises what escaped it."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        async def command(*args: Any, **kwargs: Any) -> Any:
            raise self.exc

        return command


async def run(store: RedisStore, op: str) -> None:
    if op == "get":
        await store.get("k")
    elif op == "take":
        await store.take("k")
    elif op == "put":
        await store.put("k", b"v", 10)
    else:
        await store.add("k", b"v", 10)


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("unable to perform operation on <TCPTransport closed=True>"),
        AttributeError("'NoneType' object has no attribute 'writelines'"),
        ConnectionResetError(),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("op", ["get", "take", "put", "add"])
async def test_escaping_client_errors_are_store_unavailable(exc: Exception, op: str) -> None:
    store = RedisStore(Redis(host="127.0.0.1", port=1), "t:")
    store._redis = Escaping(exc)  # type: ignore[assignment]
    with pytest.raises(StoreUnavailable) as info:
        await run(store, op)
    assert info.value.status == 503
    assert info.value.headers["Retry-After"] == "5"
