"""A full in-memory store refuses with 503 StoreUnavailable, never an unexpected 500."""

from __future__ import annotations

import pytest

from broker.errors import StoreUnavailable
from broker.store import MemoryStore


@pytest.mark.anyio
async def test_a_full_memory_store_is_unavailable_not_an_error() -> None:
    store = MemoryStore(max_items=2)
    await store.put("a", b"1", ttl=30)
    assert await store.add("b", b"1", ttl=30)
    with pytest.raises(StoreUnavailable) as put:
        await store.put("c", b"1", ttl=30)
    with pytest.raises(StoreUnavailable) as add:
        await store.add("d", b"1", ttl=30)
    for refused in (put.value, add.value):
        assert refused.status == 503
        assert refused.headers.get("Retry-After")
    assert await store.get("a") == b"1", "nothing was evicted to make room"
