"""Browser session records are sealed in the store: nothing readable, nothing movable, and
records and cookies keep working across a secret rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.requests import Request

from broker.browser.session import SESSION_KEY, SessionManager
from broker.config import ServerSettings
from broker.errors import ConfigError
from broker.identity import Identity, SamlAssertion
from broker.store import MemoryStore

pytestmark = pytest.mark.anyio
OLD, NEW = b"o" * 32, b"n" * 32
ASSERTION = "PHNhbWxwOlJlc3BvbnNlIHNlY3JldC1hc3NlcnRpb24+"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def identity() -> Identity:
    return Identity(
        protocol="saml",
        idp="corp",
        issuer="https://idp.example.com",
        subject="alice@example.com",
        attributes={"email": ["alice@example.com"]},
        expires_at=NOW + timedelta(hours=1),
        proof=SamlAssertion(ASSERTION),
    )


def manager(store: MemoryStore, *keys: bytes) -> SessionManager:
    return SessionManager(store, keys, max_seconds=3600, secure=False)


def request_with(cookie: str) -> Request:
    scope = {"type": "http", "headers": [(b"cookie", f"broker_session={cookie}".encode())]}
    return Request(scope)


def raw_records(store: MemoryStore) -> dict[str, bytes]:
    return {k: v for k, (v, _) in store._data.items()}


async def test_the_store_holds_no_assertion_and_no_subject() -> None:
    store = MemoryStore()
    cookie, _ = await manager(store, NEW).create(identity(), NOW)
    (record,) = raw_records(store).values()
    assert ASSERTION.encode() not in record
    assert b"alice" not in record
    loaded = await manager(store, NEW).load(request_with(cookie), NOW)
    assert loaded is not None
    assert loaded.identity.proof == SamlAssertion(ASSERTION)


async def test_an_altered_record_is_no_session() -> None:
    store = MemoryStore()
    cookie, _ = await manager(store, NEW).create(identity(), NOW)
    key = next(iter(store._data))
    value, expiry = store._data[key]
    store._data[key] = (value[:-1] + bytes([value[-1] ^ 1]), expiry)
    assert await manager(store, NEW).load(request_with(cookie), NOW) is None


async def test_a_record_moved_to_another_session_id_is_no_session() -> None:
    """Whoever can write the store cannot give their record to another cookie."""
    store = MemoryStore()
    m = manager(store, NEW)
    mine, s1 = await m.create(identity(), NOW)
    theirs, s2 = await m.create(identity(), NOW)
    prefix = next(k for k in store._data if k.endswith(SESSION_KEY.format(s1.id)))[
        : -len(SESSION_KEY.format(s1.id))
    ]
    store._data[prefix + SESSION_KEY.format(s2.id)] = store._data[
        prefix + SESSION_KEY.format(s1.id)
    ]
    assert await m.load(request_with(theirs), NOW) is None
    assert await m.load(request_with(mine), NOW) is not None


async def test_rotation_keeps_sessions_and_cookies() -> None:
    store = MemoryStore()
    cookie, _ = await manager(store, OLD).create(identity(), NOW)
    rotated = manager(store, NEW, OLD)
    assert await rotated.load(request_with(cookie), NOW) is not None
    # New records are sealed and signed with the new secret only.
    cookie2, _ = await rotated.create(identity(), NOW)
    assert await manager(store, NEW).load(request_with(cookie2), NOW) is not None
    # Once the old secret is gone, what it sealed or signed is no session.
    assert await manager(store, NEW).load(request_with(cookie), NOW) is None


def test_short_secrets_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        ServerSettings.model_validate({"session_secret": "too-short"})


def test_short_retired_secret_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "old"
    path.write_bytes(b"short\n")
    settings = ServerSettings.model_validate(
        {"session_secret": "x" * 32, "previous_session_secret_files": [str(path)]}
    )
    with pytest.raises(ConfigError, match="fewer than 16 bytes"):
        settings.previous_secrets()
