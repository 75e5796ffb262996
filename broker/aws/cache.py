"""Credentials already issued for the same proof, role and options, served again while safe.

Used by GET /v1/container-credentials only, and on by default (`aws.container_cache`):

- Every AWS SDK process that starts asks the container endpoint for credentials, and asks
  again as they near expiry; a pod running a CLI in a loop, or many worker processes,
  sends the same token for the same role many times an hour. Each would be an STS call,
  and STS's request quota is shared by everything in the account (aws.sts_rate_per_account).
- The key is a digest of the exact STS request: the token itself, the role, the session
  name, the duration and the session policies. A hit is what STS would have answered to
  the same request; nobody gets credentials that their own token would not get them.
- Rules still decide on every hit: the role is mapped and chosen before the cache is
  looked at, and every hit is an audit event with the AccessKeyId it handed out.
- The cost is staleness: credentials AWS has since revoked ("Revoke active sessions") are
  served again to the same token until the entry ages out. `max_age` (5 minutes by
  default) bounds that; a rotated token file is a new key anyway.

An entry is never served past the proof's own expiry, never older than `max_age`, and never
with less than `min_remaining` of its lifetime left (15 minutes by default: botocore
refreshes container credentials 15 minutes before they expire, so anything shorter would
bring it straight back). Bounded: the least recently used entry goes first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from broker.aws.observer import CacheResult
from broker.identity import Credentials


@dataclass(frozen=True, slots=True)
class _Entry:
    credentials: Credentials
    not_after: float  # epoch seconds: the first moment this entry may no longer be served


class CredentialsCache:
    def __init__(
        self,
        *,
        size: int,
        max_age: float,
        min_remaining: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._size = size
        self._max_age = max_age
        self._min_remaining = min_remaining
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> tuple[Credentials | None, CacheResult]:
        """The credentials stored under `key` if they may still be served ("hit"); else None
        and "miss" (nothing stored) or "stale" (stored, no longer servable: dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None, "miss"
        if self._clock() >= entry.not_after:
            del self._entries[key]
            return None, "stale"
        self._entries.move_to_end(key)
        return entry.credentials, "hit"

    def put(self, key: bytes, credentials: Credentials, proof_expires: datetime) -> None:
        now = self._clock()
        not_after = min(
            proof_expires.timestamp(),
            credentials.expiration.timestamp() - self._min_remaining,
            now + self._max_age,
        )
        if now >= not_after:
            self._entries.pop(key, None)
            return
        self._entries[key] = _Entry(credentials, not_after)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
