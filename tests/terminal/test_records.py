"""Codes, device grants and session tokens in the store: one use, hashed keys, sealed records,
every expiry checked against the `now` passed in."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from broker.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SessionEnded,
    SlowDown,
    TooManyAttempts,
)
from broker.identity import Identity, SamlAssertion
from broker.store import MemoryStore
from broker.terminal.records import (
    CODE_SECONDS,
    DEVICE_REQUESTS_A_MINUTE,
    DEVICE_SECONDS,
    CliSession,
    Records,
)

pytestmark = pytest.mark.anyio
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=8)
ASSERTION = "PHNhbWxwOlJlc3BvbnNlIHNlY3JldD0ieWVzIj4="
IDENTITY = Identity(
    protocol="saml",
    idp="corp",
    issuer="https://idp.example.test/saml",
    subject="alice@example.com",
    attributes={"groups": ["admins"]},
    expires_at=LATER,
    proof=SamlAssertion(ASSERTION, NOW),
)
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "http://127.0.0.1:50000/callback"


class Watched(MemoryStore):
    """A memory store that remembers every key and value written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[str, bytes] = {}

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.written[key] = value
        await super().put(key, value, ttl)


@pytest.fixture
def store() -> Watched:
    return Watched()


@pytest.fixture
def records(store: Watched) -> Records:
    return Records(store, [b"k" * 32])


async def _code(records: Records, now: datetime = NOW) -> str:
    return await records.new_code(
        IDENTITY, LATER, challenge=CHALLENGE, redirect_uri=REDIRECT, client_id="broker-cli", now=now
    )


async def _redeem(
    records: Records, code: str, now: datetime = NOW, over: dict[str, str] | None = None
) -> tuple[str, CliSession]:
    args = {"verifier": VERIFIER, "redirect_uri": REDIRECT, "client_id": "broker-cli"}
    args.update(over or {})
    return await records.redeem_code(
        code,
        verifier=args["verifier"],
        redirect_uri=args["redirect_uri"],
        client_id=args["client_id"],
        now=now,
    )


async def test_a_code_opens_one_session_for_the_identity(records: Records) -> None:
    token, session = await _redeem(records, await _code(records))
    assert token.startswith("bst_")
    assert len(token) > 40
    assert session.identity == IDENTITY
    assert session.expires_at == LATER
    again = await records.session(token, NOW + timedelta(hours=1))
    assert again.identity.subject == "alice@example.com"


async def test_a_code_used_twice_revokes_what_it_opened(records: Records) -> None:
    code = await _code(records)
    token, _ = await _redeem(records, code)
    with pytest.raises(InvalidGrant, match="already used"):
        await _redeem(records, code)
    with pytest.raises(SessionEnded):
        await records.session(token, NOW)


@pytest.mark.parametrize(
    "over",
    [
        {"verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"},
        {"redirect_uri": "http://127.0.0.1:50001/callback"},
        {"client_id": "another"},
    ],
    ids=["verifier", "redirect_uri", "client_id"],
)
async def test_a_mismatch_spends_the_code(records: Records, over: dict[str, str]) -> None:
    code = await _code(records)
    with pytest.raises(InvalidGrant):
        await _redeem(records, code, over=over)
    with pytest.raises(InvalidGrant):
        await _redeem(records, code)  # the right verifier is now too late


async def test_a_code_expires(records: Records) -> None:
    code = await _code(records)
    with pytest.raises(InvalidGrant, match="expired"):
        await _redeem(records, code, now=NOW + timedelta(seconds=CODE_SECONDS))


async def test_unknown_codes_and_tokens(records: Records) -> None:
    with pytest.raises(InvalidGrant):
        await _redeem(records, "made-up")
    for token in ("bst_made-up", "not-even-ours", "bst_" + "x" * 200):
        with pytest.raises(SessionEnded) as raised:
            await records.session(token, NOW)
        assert raised.value.status == 401


async def test_a_session_ends_when_its_sign_in_does_and_when_revoked(records: Records) -> None:
    token, session = await records.new_session(IDENTITY, NOW + timedelta(minutes=5), NOW)
    with pytest.raises(SessionEnded):
        await records.session(token, NOW + timedelta(minutes=5))
    token, session = await records.new_session(IDENTITY, LATER, NOW)
    await records.revoke(session.token_hash)
    with pytest.raises(SessionEnded):
        await records.session(token, NOW)


async def test_the_store_holds_neither_secrets_nor_readable_identities(
    records: Records, store: Watched
) -> None:
    code = await _code(records)
    token, _ = await _redeem(records, code)
    device_code, user_code = await records.new_device("127.0.0.1", NOW)
    everything = b"".join(k.encode() + v for k, v in store.written.items())
    for secret in (code, token, device_code, user_code, ASSERTION, "alice@example.com"):
        assert secret.encode() not in everything
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert f"cli-token:{digest}" in store.written


async def test_a_record_moved_to_another_key_does_not_open(
    records: Records, store: Watched
) -> None:
    _token, session = await records.new_session(IDENTITY, LATER, NOW)
    other, other_session = await records.new_session(IDENTITY, LATER, NOW)
    sealed = store.written[f"cli-token:{session.token_hash}"]
    await store.put(f"cli-token:{other_session.token_hash}", sealed, 60)
    with pytest.raises(SessionEnded):
        await records.session(other, NOW)


async def _approve(records: Records, user_code: str, allow: bool = True) -> None:
    found = await records.device_request(user_code, NOW)
    assert found is not None
    await records.decide_device(found, IDENTITY if allow else None, LATER, NOW)


async def test_device_pending_slow_down_then_a_token_once(records: Records) -> None:
    device_code, user_code = await records.new_device("127.0.0.1", NOW)
    with pytest.raises(AuthorizationPending):
        await records.poll_device(device_code, NOW)
    with pytest.raises(SlowDown) as slow:
        await records.poll_device(device_code, NOW + timedelta(seconds=2))
    assert slow.value.extra["interval"] == 10
    with pytest.raises(SlowDown):  # 10 s now: 6 s later is still too fast
        await records.poll_device(device_code, NOW + timedelta(seconds=8))
    with pytest.raises(AuthorizationPending):
        await records.poll_device(device_code, NOW + timedelta(seconds=30))
    await _approve(records, user_code)
    token, session = await records.poll_device(device_code, NOW + timedelta(seconds=60))
    assert session.identity.subject == "alice@example.com"
    assert (await records.session(token, NOW)).expires_at == LATER
    with pytest.raises(InvalidGrant):
        await records.poll_device(device_code, NOW + timedelta(seconds=90))


async def test_device_denied_and_expired(records: Records) -> None:
    denied, user_code = await records.new_device(None, NOW)
    await _approve(records, user_code, allow=False)
    with pytest.raises(AccessDenied):
        await records.poll_device(denied, NOW)
    expired, _ = await records.new_device(None, NOW)
    with pytest.raises(ExpiredToken):
        await records.poll_device(expired, NOW + timedelta(seconds=DEVICE_SECONDS))


async def test_a_user_code_is_spent_by_its_decision(records: Records) -> None:
    _, user_code = await records.new_device(None, NOW)
    await _approve(records, user_code)
    assert await records.device_request(user_code, NOW) is None


async def test_device_codes_are_limited_per_client_address(records: Records) -> None:
    for _ in range(DEVICE_REQUESTS_A_MINUTE):
        await records.new_device("192.0.2.1", NOW)
    with pytest.raises(TooManyAttempts) as refused:
        await records.new_device("192.0.2.1", NOW)
    assert refused.value.status == 429
    assert await records.new_device("192.0.2.2", NOW)


async def test_wrong_guesses_are_counted_per_browser(records: Records) -> None:
    for _ in range(3):
        await records.guessed_wrong("browser-a")
    assert await records.wrong_guesses("browser-a") == 3
    assert await records.wrong_guesses("browser-b") == 0


def test_the_fixtures_challenge_is_the_verifiers() -> None:
    digest = hashlib.sha256(VERIFIER.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == CHALLENGE
