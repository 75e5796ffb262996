"""What the picker remembers of a person: recent roles and favourites, bounded, deduplicated,
sealed under a key that does not name the person, kept 90 days from the last use."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from broker.browser.favourites import shortcuts
from broker.browser.memory import (
    FAVOURITES_MAX,
    RECENT_MAX,
    TTL_SECONDS,
    Picks,
    RoleMemory,
    UnreadableRecord,
)
from broker.browser.pages import AccountGroup
from broker.errors import FavouritesFull, StoreUnavailable
from broker.identity import Identity, NoProof
from broker.store import MemoryStore

NEW, OLD = b"n" * 32, b"o" * 32
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def arn(n: int | str) -> str:
    return f"arn:aws:iam::111122223333:role/r{n}"


def person(subject: str = "alice@example.com", idp: str = "corp") -> Identity:
    return Identity(
        protocol="saml",
        idp=idp,
        issuer="https://idp.example.com",
        subject=subject,
        attributes={},
        expires_at=NOW + timedelta(hours=1),
        proof=NoProof(),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def raw(store: MemoryStore) -> dict[str, bytes]:
    return {k: v for k, (v, _) in store._data.items()}


# -- the record -----------------------------------------------------------------------------


def test_recent_is_newest_first_deduplicated_and_bounded() -> None:
    picks = Picks()
    for n in [1, 2, 3, 2, 4, 5, 6, 7]:
        picks = picks.opened(arn(n))
    assert picks.recent == (arn(7), arn(6), arn(5), arn(4), arn(2))
    assert len(picks.recent) == RECENT_MAX


def test_star_is_idempotent_and_keeps_starring_order() -> None:
    picks = Picks().star(arn(2), True, ()).star(arn(1), True, ()).star(arn(2), True, ())
    assert picks.favourites == (arn(2), arn(1))
    assert picks.star(arn(2), False, ()).favourites == (arn(1),)
    assert picks.star(arn(9), False, ()) == picks


def test_a_full_list_refuses_another_star() -> None:
    full = Picks(favourites=tuple(arn(n) for n in range(FAVOURITES_MAX)))
    granted = set(full.favourites) | {arn("new")}
    with pytest.raises(FavouritesFull) as refused:
        full.star(arn("new"), True, granted)
    assert (refused.value.code, refused.value.status) == ("FavouritesFull", 409)
    assert full.star(arn(3), True, granted) == full, "an already starred role is no change"


def test_a_full_list_makes_room_by_dropping_roles_no_longer_granted() -> None:
    full = Picks(favourites=tuple(arn(n) for n in range(FAVOURITES_MAX)))
    granted = {arn(n) for n in range(1, FAVOURITES_MAX)} | {arn("new")}
    picks = full.star(arn("new"), True, granted)
    assert arn(0) not in picks.favourites
    assert picks.favourites[-1] == arn("new")
    assert len(picks.favourites) == FAVOURITES_MAX


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"v":2,"recent":[],"favourites":[]}',
        b'{"v":1,"recent":"x","favourites":[]}',
        b'{"v":1,"recent":[1],"favourites":[]}',
        b'{"v":1,"recent":[]}',
        b"\xff",
    ],
)
def test_anything_but_a_record_does_not_decode(data: bytes) -> None:
    with pytest.raises(UnreadableRecord):
        Picks.decode(data)


def test_decoding_reapplies_the_bounds() -> None:
    roles = [arn(n) for n in range(80)]
    data = Picks(tuple(roles + roles), tuple(roles + roles)).encode()
    picks = Picks.decode(data)
    assert picks.recent == tuple(roles[:RECENT_MAX])
    assert picks.favourites == tuple(roles[:FAVOURITES_MAX])
    assert Picks.decode(Picks((arn(1),), (arn(2),)).encode()) == Picks((arn(1),), (arn(2),))


def test_shortcuts_show_only_granted_roles() -> None:
    prod = AccountGroup("111122223333", "Production")
    prod.roles = [
        {"name": "r1", "arn": arn(1), "description": ""},
        {"name": "r2", "arn": arn(2), "description": ""},
        {"name": "r3", "arn": arn(3), "description": ""},
    ]
    picks = Picks(recent=(arn(9), arn(3), arn(1)), favourites=(arn(3), arn(8), arn(1)))
    shown = shortcuts([prod], picks)
    assert [s.role["arn"] for s in shown.favourites] == [arn(1), arn(3)], "the accounts' order"
    assert [s.role["arn"] for s in shown.recent] == [arn(3), arn(1)]
    assert shown.starred == {arn(1), arn(3)}
    assert shown.last == arn(3)
    assert shortcuts([], picks).last == ""


# -- in the store -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_store_holds_neither_subject_nor_roles() -> None:
    store = MemoryStore()
    memory = RoleMemory(store, [NEW])
    await memory.opened(person(), arn("secret-role"))
    ((key, record),) = raw(store).items()
    assert key.startswith("picks:")
    assert key == memory.keys(person())[0]
    for clear in (b"alice", b"example.com", b"corp", b"secret-role", b"111122223333"):
        assert clear not in key.encode()
        assert clear not in record
    assert (await memory.recall(person())).recent == (arn("secret-role"),)


def test_keys_are_per_person_and_per_secret() -> None:
    memory = RoleMemory(MemoryStore(), [NEW])
    keys = {
        memory.keys(person())[0],
        memory.keys(person("bob@example.com"))[0],
        memory.keys(person(idp="other"))[0],
        # No ambiguity between where the IdP name ends and the subject begins.
        memory.keys(person("b", idp="corpa"))[0],
        memory.keys(person("ab", idp="corp"))[0],
        RoleMemory(MemoryStore(), [OLD]).keys(person())[0],
    }
    assert len(keys) == 6


@pytest.mark.anyio
async def test_people_do_not_share_memories() -> None:
    store = MemoryStore()
    memory = RoleMemory(store, [NEW])
    await memory.opened(person(), arn(1))
    await memory.star(person(), arn(2), True, {arn(2)})
    assert await memory.recall(person("bob@example.com")) == Picks()
    assert await memory.recall(person(idp="other")) == Picks()
    assert await memory.recall(person()) == Picks((arn(1),), (arn(2),))


@pytest.mark.anyio
async def test_a_record_moved_to_another_person_does_not_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    memory = RoleMemory(store, [NEW])
    await memory.star(person(), arn(1), True, {arn(1)})
    await memory.opened(person("bob@example.com"), arn(2))
    alice, bob = memory.keys(person())[0], memory.keys(person("bob@example.com"))[0]
    store._data[bob] = store._data[alice]
    with caplog.at_level(logging.WARNING, logger="broker.browser.memory"):
        assert await memory.recall(person("bob@example.com")) == Picks()
    assert "picker memories refused" in caplog.text


@pytest.mark.anyio
async def test_an_altered_record_is_no_memory_and_is_replaced() -> None:
    store = MemoryStore()
    memory = RoleMemory(store, [NEW])
    await memory.opened(person(), arn(1))
    key = memory.keys(person())[0]
    value, expiry = store._data[key]
    store._data[key] = (value[:-1] + bytes([value[-1] ^ 1]), expiry)
    assert await memory.recall(person()) == Picks()
    await memory.opened(person(), arn(2))
    assert (await memory.recall(person())).recent == (arn(2),)


@pytest.mark.anyio
async def test_memories_live_90_days_from_the_last_use() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    memory = RoleMemory(store, [NEW])
    assert TTL_SECONDS == 90 * 24 * 3600
    await memory.star(person(), arn(1), True, {arn(1)})
    clock.now += TTL_SECONDS - 60
    # Opening any role is a use: the whole record, favourites too, lives on.
    await memory.opened(person(), arn(2))
    clock.now += TTL_SECONDS - 60
    assert await memory.recall(person()) == Picks((arn(2),), (arn(1),))
    clock.now += 120
    assert await memory.recall(person()) == Picks()


@pytest.mark.anyio
async def test_a_secret_rotation_keeps_memories_and_moves_them() -> None:
    store = MemoryStore()
    await RoleMemory(store, [OLD]).star(person(), arn(1), True, {arn(1)})
    rotated = RoleMemory(store, [NEW, OLD])
    assert await rotated.recall(person()) == Picks(favourites=(arn(1),))
    await rotated.opened(person(), arn(2))
    assert list(raw(store)) == [rotated.keys(person())[0]], "moved to the current key"
    assert await RoleMemory(store, [NEW]).recall(person()) == Picks((arn(2),), (arn(1),))


@pytest.mark.anyio
async def test_a_refused_star_stores_nothing() -> None:
    store = MemoryStore()
    memory = RoleMemory(store, [NEW])
    granted = {arn(n) for n in range(FAVOURITES_MAX)} | {arn("new")}
    for n in range(FAVOURITES_MAX):
        await memory.star(person(), arn(n), True, granted)
    before = raw(store)
    with pytest.raises(FavouritesFull):
        await memory.star(person(), arn("new"), True, granted)
    assert raw(store) == before


class BrokenStore(MemoryStore):
    async def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("The store is down.", log_detail="test: down")

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        raise StoreUnavailable("The store is down.", log_detail="test: down")


@pytest.mark.anyio
async def test_a_broken_store_hides_memories_and_refuses_stars(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = RoleMemory(BrokenStore(), [NEW])
    with caplog.at_level(logging.WARNING, logger="broker.browser.memory"):
        assert await memory.recall(person()) == Picks()
        await memory.opened(person(), arn(1))  # best-effort: no error
    assert "picker memories not read: StoreUnavailable (test: down)" in caplog.text
    assert "recent role not recorded: StoreUnavailable" in caplog.text
    with pytest.raises(StoreUnavailable):
        await memory.star(person(), arn(1), True, {arn(1)})


def test_a_full_favourites_list_says_what_to_do_on_the_error_page() -> None:
    from broker.http.problems import next_step

    sentence, button = next_step(FavouritesFull("Too many."))
    assert sentence.startswith("Unstar a role")
    assert button == ("Back to your accounts", "/")
