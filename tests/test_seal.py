"""Sealed store records: round trip, tamper, wrong context, rotation, wrong key."""

from __future__ import annotations

import secrets

import pytest

from broker.errors import ConfigError, SessionExpired
from broker.seal import HEADER_BYTES, Sealer

OLD = b"old-secret-" + secrets.token_bytes(16)
NEW = b"new-secret-" + secrets.token_bytes(16)
RECORD = b'{"sub": "alice", "roles": ["deploy"]}'
KEY = "session:abc123"


def test_round_trip() -> None:
    s = Sealer([NEW])
    sealed = s.seal(RECORD, context=KEY)
    assert RECORD not in sealed
    assert s.open(sealed, context=KEY) == RECORD
    assert s.open(s.seal(b"", context=KEY), context=KEY) == b""


def test_each_seal_is_fresh() -> None:
    s = Sealer([NEW])
    assert s.seal(RECORD, context=KEY) != s.seal(RECORD, context=KEY)


@pytest.mark.parametrize(
    "where",
    [0, 1, 5, HEADER_BYTES - 1, HEADER_BYTES, -17, -1],
    ids=["version", "key-id", "nonce", "nonce-end", "ciphertext", "tag-start", "tag-end"],
)
def test_any_altered_byte_is_refused(where: int) -> None:
    s = Sealer([NEW])
    sealed = bytearray(s.seal(RECORD, context=KEY))
    sealed[where] ^= 0x01
    with pytest.raises(SessionExpired) as info:
        s.open(bytes(sealed), context=KEY)
    assert info.value.log_detail is not None
    assert info.value.log_detail.startswith("sealed record: ")


@pytest.mark.parametrize("cut", [0, 1, HEADER_BYTES, HEADER_BYTES + 15])
def test_truncated_is_refused(cut: int) -> None:
    s = Sealer([NEW])
    with pytest.raises(SessionExpired):
        s.open(s.seal(RECORD, context=KEY)[:cut], context=KEY)


def test_appended_bytes_are_refused() -> None:
    s = Sealer([NEW])
    with pytest.raises(SessionExpired):
        s.open(s.seal(RECORD, context=KEY) + b"\x00", context=KEY)


def test_record_moved_to_another_key_is_refused() -> None:
    s = Sealer([NEW])
    sealed = s.seal(RECORD, context=KEY)
    for other in ("session:abc124", "", KEY + "\x00", KEY.encode() + b"x"):
        with pytest.raises(SessionExpired, match="no longer valid"):
            s.open(sealed, context=other)
    assert s.open(sealed, context=KEY.encode()) == RECORD  # str and its UTF-8 bytes agree


def test_rotation_old_records_still_open_new_ones_use_the_new_secret() -> None:
    before = Sealer([OLD])
    old_record = before.seal(RECORD, context=KEY)
    during = Sealer([NEW, OLD])
    assert during.open(old_record, context=KEY) == RECORD
    new_record = during.seal(RECORD, context=KEY)
    assert Sealer([NEW]).open(new_record, context=KEY) == RECORD
    with pytest.raises(SessionExpired):
        before.open(new_record, context=KEY)  # sealed with the new secret only
    # Once the old secret is retired, its records no longer open.
    with pytest.raises(SessionExpired) as info:
        Sealer([NEW]).open(old_record, context=KEY)
    assert info.value.log_detail == "sealed record: sealed under a secret that is not configured"


def test_wrong_key_is_refused() -> None:
    sealed = Sealer([NEW]).seal(RECORD, context=KEY)
    with pytest.raises(SessionExpired):
        Sealer([b"another-secret-" + secrets.token_bytes(16)]).open(sealed, context=KEY)


def test_a_key_id_collision_still_opens_with_the_right_secret() -> None:
    s = Sealer([NEW, OLD])
    sealed = Sealer([OLD]).seal(RECORD, context=KEY)
    # Forge the situation of two secrets sharing a key id: both are tried, the right one wins.
    s._keys[0] = (s._keys[1][0], s._keys[0][1])
    assert s.open(sealed, context=KEY) == RECORD


@pytest.mark.parametrize("bad", [[], [b"short"], [NEW, b""]], ids=["none", "short", "empty"])
def test_secrets_are_checked(bad: list[bytes]) -> None:
    with pytest.raises(ConfigError):
        Sealer(bad)
