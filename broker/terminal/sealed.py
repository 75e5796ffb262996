"""How the command line's records are kept: JSON, sealed (broker.seal) with the store key as
context, and read as absent when they do not open.

Each record carries a verified Identity and so the IdP's proof: sealed, a record copied to
another key, altered, or sealed under a secret no longer configured is as if it were not there."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from broker.errors import SessionExpired
from broker.seal import Sealer
from broker.store import Store


class SealedRecords:
    def __init__(self, store: Store, keys: Sequence[bytes]) -> None:
        self._store = store
        self._sealer = Sealer(keys)

    async def put(self, key: str, doc: dict[str, Any], ttl: float) -> None:
        sealed = self._sealer.seal(json.dumps(doc, separators=(",", ":")).encode(), context=key)
        await self._store.put(key, sealed, max(ttl, 1.0))

    async def get(self, key: str) -> dict[str, Any] | None:
        return self._open(key, await self._store.get(key))

    async def take(self, key: str) -> dict[str, Any] | None:
        """Get and delete in one step: a one-time record is read at most once."""
        return self._open(key, await self._store.take(key))

    def _open(self, key: str, sealed: bytes | None) -> dict[str, Any] | None:
        if sealed is None:
            return None
        try:
            doc = json.loads(self._sealer.open(sealed, context=key))
        except (SessionExpired, ValueError):
            return None
        return doc if isinstance(doc, dict) else None
