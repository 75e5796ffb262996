"""What the picker remembers of a person across sessions: recent roles and favourites.

One record per person (IdP name + subject) in the store, sealed like a session record (it
names what someone uses), under a key that is a keyed hash of the person: whoever reads the
store sees neither the subject nor the roles, and cannot test a guessed subject against the
keys without a session secret. The record lives `TTL_SECONDS` after its last write; every
console or command-line issuance rewrites it, so it lasts as long as the person uses the
broker.

Roles are remembered by ARN (a name may exist in several accounts), and only ever shown
again for roles the rules still grant: the record suggests, the rules decide.

Failures: reading is best-effort (`recall`: the picker shows without memories and the log
says why); recording an opened role is best-effort too (`opened`: the person already has
their console or credentials); starring fails closed (`star`: the person asked for it, so
a store that cannot keep it is a 503). Two tabs writing at the same instant: the last write
wins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from broker.errors import BrokerError, FavouritesFull, SessionExpired
from broker.identity import Identity
from broker.seal import Sealer
from broker.store import Store

log = logging.getLogger(__name__)
RECENT_MAX = 5
FAVOURITES_MAX = 50
TTL_SECONDS = 90 * 24 * 3600
MEMORY_KEY = "picks:{}"
_PERSON_LABEL = b"broker.picks.v1 person key"


class UnreadableRecord(ValueError):
    """The record opened but is not one this version wrote."""


@dataclass(frozen=True, slots=True)
class Picks:
    """Role ARNs: `recent` newest first, `favourites` in the order they were starred."""

    recent: tuple[str, ...] = ()
    favourites: tuple[str, ...] = ()

    def opened(self, arn: str) -> Picks:
        """`arn` first among the recent roles, once, at most RECENT_MAX of them."""
        rest = tuple(r for r in self.recent if r != arn)
        return replace(self, recent=(arn, *rest)[:RECENT_MAX])

    def star(self, arn: str, on: bool, granted: Collection[str]) -> Picks:
        """Star or unstar `arn` (idempotent). A full list first drops roles no longer in
        `granted`; still full, the star is refused."""
        if not on:
            return replace(self, favourites=tuple(f for f in self.favourites if f != arn))
        if arn in self.favourites:
            return self
        kept = self.favourites
        if len(kept) >= FAVOURITES_MAX:
            kept = tuple(f for f in kept if f in granted)
        if len(kept) >= FAVOURITES_MAX:
            raise FavouritesFull(
                f"You have {FAVOURITES_MAX} favourites, the most kept; unstar one first."
            )
        return replace(self, favourites=(*kept, arn))

    def encode(self) -> bytes:
        doc = {"v": 1, "recent": list(self.recent), "favourites": list(self.favourites)}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Picks:
        """The record as written (bounds re-applied); UnreadableRecord for anything else."""
        try:
            doc = json.loads(data)
        except ValueError as exc:  # JSON or UTF-8
            raise UnreadableRecord("not JSON") from exc
        if not isinstance(doc, dict) or doc.get("v") != 1:
            raise UnreadableRecord("not a version 1 record")
        return cls(
            _roles(doc.get("recent"))[:RECENT_MAX],
            _roles(doc.get("favourites"))[:FAVOURITES_MAX],
        )


class RoleMemory:
    """Picks in the store. `keys` are the session secrets, the current one first: the record
    is sealed with it and found under its person key; a record kept under a retired secret's
    key is still read, and moved to the current key by the next write."""

    def __init__(self, store: Store, keys: Sequence[bytes], *, ttl: float = TTL_SECONDS) -> None:
        self._store = store
        self._sealer = Sealer(keys)
        self._people = [
            hmac.new(k, _PERSON_LABEL, hashlib.sha256).digest() for k in dict.fromkeys(keys)
        ]
        self._ttl = ttl

    def keys(self, identity: Identity) -> list[str]:
        """Store keys for this person: under the current secret, then the retired ones."""
        person = json.dumps([identity.idp, identity.subject]).encode()
        return [
            MEMORY_KEY.format(hmac.new(k, person, hashlib.sha256).hexdigest()) for k in self._people
        ]

    async def recall(self, identity: Identity) -> Picks:
        """For showing: a store or record failure means no memories this time, not no page."""
        try:
            picks, _ = await self._read(identity)
        except BrokerError as exc:
            log.warning("picker memories not read: %s (%s)", exc.code, exc.log_detail or "")
            return Picks()
        return picks

    async def opened(self, identity: Identity, arn: str) -> None:
        """Record an issued role; a failure is logged, never the person's problem."""
        try:
            picks, found = await self._read(identity)
            await self._write(identity, picks.opened(arn), found)
        except BrokerError as exc:
            log.warning("recent role not recorded: %s (%s)", exc.code, exc.log_detail or "")

    async def star(self, identity: Identity, arn: str, on: bool, granted: Collection[str]) -> Picks:
        """Star or unstar; raises StoreUnavailable (503) if the store cannot keep it."""
        picks, found = await self._read(identity)
        changed = picks.star(arn, on, granted)
        await self._write(identity, changed, found)
        return changed

    async def _read(self, identity: Identity) -> tuple[Picks, str | None]:
        """The picks and the key they were found under (None: nothing kept). A record that
        does not open (altered, moved, sealed under a dropped secret) counts as none."""
        for key in self.keys(identity):
            sealed = await self._store.get(key)
            if sealed is None:
                continue
            try:
                return Picks.decode(self._sealer.open(sealed, context=key)), key
            except SessionExpired as exc:
                log.warning("picker memories refused: %s", exc.log_detail)
            except UnreadableRecord as exc:
                log.warning("picker memories unreadable: %s", exc)
            return Picks(), key
        return Picks(), None

    async def _write(self, identity: Identity, picks: Picks, found: str | None) -> None:
        key = self.keys(identity)[0]
        await self._store.put(key, self._sealer.seal(picks.encode(), context=key), self._ttl)
        if found is not None and found != key:
            await self._store.delete(found)


def _roles(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UnreadableRecord("roles are not a list of strings")
    return tuple(dict.fromkeys(value))
