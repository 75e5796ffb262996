"""What the store keeps for the command line: one-time codes, device grants and broker session
tokens, each under the SHA-256 of its secret and sealed like a browser session's record
(sealed.py).

The store never holds a code or a token itself, only its hash: whoever reads the store cannot
redeem anything."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.browser.session import decode_identity, encode_identity
from broker.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SessionEnded,
    SlowDown,
    TooManyAttempts,
)
from broker.identity import Identity
from broker.store import Store
from broker.terminal.checks import digest, new_user_code, verifier_matches
from broker.terminal.sealed import SealedRecords

TOKEN_PREFIX = "bst_"  # noqa: S105 (a prefix, not a secret)
CODE_SECONDS = 60  # RFC 6749 §4.1.2: "a maximum authorization code lifetime of 10 minutes"
DEVICE_SECONDS = 600
DEVICE_INTERVAL = 5
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5
# Unknown device codes are invalid_grant, known but expired ones expired_token: keep a
# record this much past its expiry to tell the two apart.
_DEVICE_GRACE = 300

_SESSION_KEY = "cli-token:{}"
_CODE = "cli-code:{}"
_CODE_USED = "cli-code-used:{}"
_DEVICE = "cli-device:{}"
_USER_CODE = "cli-user-code:{}"
_GUESSES = "cli-device-guesses:{}"
_REQUESTS = "cli-device-requests:{}"
#: Device codes one client address may ask for a minute: each holds two store entries for
#: fifteen minutes, and nobody signs in more than a few terminals a minute.
DEVICE_REQUESTS_A_MINUTE = 10


@dataclass(frozen=True, slots=True)
class CliSession:
    """What a broker session token stands for: a verified identity until `expires_at`."""

    token_hash: str
    identity: Identity
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """A pending device authorization, as the approval page shows it."""

    device_hash: str
    user_code: str
    requested_at: datetime
    client: str | None
    expires_at: datetime


class Records:
    def __init__(self, store: Store, keys: Sequence[bytes]) -> None:
        self._sealed = SealedRecords(store, keys)
        self._store = store

    # -- broker session tokens --------------------------------------------------------------

    async def new_session(
        self, identity: Identity, expires_at: datetime, now: datetime
    ) -> tuple[str, CliSession]:
        """An opaque bearer token (never an IdP assertion or token); the store keeps its hash."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        session = CliSession(digest(token), identity, expires_at)
        doc = {"identity": encode_identity(identity), "expires_at": expires_at.timestamp()}
        await self._sealed.put(_SESSION_KEY.format(session.token_hash), doc, _left(expires_at, now))
        return token, session

    async def session(self, token: str, now: datetime) -> CliSession:
        """The live session a token stands for; SessionEnded if unknown, revoked or expired."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            raise _ended("not a broker session token")
        token_hash = digest(token)
        doc = await self._sealed.get(_SESSION_KEY.format(token_hash))
        if doc is None:
            raise _ended("unknown or revoked session token")
        expires_at = datetime.fromtimestamp(doc["expires_at"], UTC)
        if expires_at <= now:
            raise _ended("expired session token")
        return CliSession(token_hash, decode_identity(doc["identity"]), expires_at)

    async def revoke(self, token_hash: str) -> None:
        await self._store.delete(_SESSION_KEY.format(token_hash))

    # -- authorization codes (RFC 6749 §4.1, RFC 7636) ---------------------------------------

    async def new_code(
        self,
        identity: Identity,
        session_expires_at: datetime,
        *,
        challenge: str,
        redirect_uri: str,
        client_id: str,
        now: datetime,
    ) -> str:
        code = secrets.token_urlsafe(32)
        doc = {
            "identity": encode_identity(identity),
            "session_expires_at": session_expires_at.timestamp(),
            "challenge": challenge,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "expires_at": now.timestamp() + CODE_SECONDS,
        }
        await self._sealed.put(_CODE.format(digest(code)), doc, CODE_SECONDS)
        return code

    async def redeem_code(
        self, code: str, *, verifier: str, redirect_uri: str, client_id: str, now: datetime
    ) -> tuple[str, CliSession]:
        """Taken from the store in one step, so a code is redeemed at most once. A code seen
        again revokes the session token it was redeemed for (RFC 6749 §4.1.2, §10.5). The
        code is spent by any attempt, right or wrong, so its verifier cannot be guessed."""
        code_hash = digest(code)
        doc = await self._sealed.take(_CODE.format(code_hash))
        if doc is None:
            used = await self._store.take(_CODE_USED.format(code_hash))
            if used is not None:
                await self.revoke(used.decode())
                raise InvalidGrant(
                    "This code was already used; the session it opened is now revoked.",
                    log_detail="authorization code replayed: its session token revoked",
                )
            raise InvalidGrant("The code is unknown or has expired; run broker login again.")
        if doc["expires_at"] <= now.timestamp():
            raise InvalidGrant("The code has expired; run broker login again.")
        if doc["client_id"] != client_id or doc["redirect_uri"] != redirect_uri:
            raise InvalidGrant(
                "The code was issued for another client or redirect_uri.",
                log_detail="redirect_uri or client_id differs from the authorization request",
            )
        if not verifier_matches(verifier, doc["challenge"]):
            raise InvalidGrant("code_verifier does not match the code_challenge (RFC 7636).")
        expires_at = datetime.fromtimestamp(doc["session_expires_at"], UTC)
        if expires_at <= now:
            raise InvalidGrant("The sign-in behind this code has ended; sign in again.")
        token, session = await self.new_session(decode_identity(doc["identity"]), expires_at, now)
        await self._store.put(
            _CODE_USED.format(code_hash), session.token_hash.encode(), _left(expires_at, now)
        )
        return token, session

    # -- device authorization (RFC 8628) -----------------------------------------------------

    async def new_device(self, client: str | None, now: datetime) -> tuple[str, str]:
        """(device_code, user_code): the first for the command line, the second for a person.
        Anyone may ask, so each client address may ask only so often (a full store would
        refuse everyone's sign-ins)."""
        key = _REQUESTS.format(digest(client or "unknown"))
        raw = await self._store.get(key)
        asked = int(raw) if raw is not None and raw.isdigit() else 0
        if asked >= DEVICE_REQUESTS_A_MINUTE:
            raise TooManyAttempts(
                "Too many device codes asked for from this address; wait a minute.",
                headers={"Retry-After": "60"},
            )
        # Read then write: a race may let one more through; it never refuses too early.
        await self._store.put(key, str(asked + 1).encode(), 60)
        device_code = secrets.token_urlsafe(32)
        user_code = new_user_code()
        device_hash = digest(device_code)
        doc = {
            "user_code": user_code,
            "status": "pending",
            "interval": DEVICE_INTERVAL,
            "last_poll": None,
            "requested_at": now.timestamp(),
            "client": client,
            "expires_at": now.timestamp() + DEVICE_SECONDS,
        }
        await self._sealed.put(_DEVICE.format(device_hash), doc, DEVICE_SECONDS + _DEVICE_GRACE)
        await self._sealed.put(
            _USER_CODE.format(digest(user_code)), {"device": device_hash}, DEVICE_SECONDS
        )
        return device_code, user_code

    async def device_request(self, user_code: str, now: datetime) -> DeviceRequest | None:
        """The pending request a user code names, or None (unknown, expired or decided)."""
        link = await self._sealed.get(_USER_CODE.format(digest(user_code)))
        if link is None:
            return None
        doc = await self._sealed.get(_DEVICE.format(link["device"]))
        if doc is None or doc["status"] != "pending" or doc["expires_at"] <= now.timestamp():
            return None
        return DeviceRequest(
            link["device"],
            doc["user_code"],
            datetime.fromtimestamp(doc["requested_at"], UTC),
            doc["client"],
            datetime.fromtimestamp(doc["expires_at"], UTC),
        )

    async def decide_device(
        self,
        request: DeviceRequest,
        identity: Identity | None,
        session_expires_at: datetime,
        now: datetime,
    ) -> None:
        """Approve (with the identity of the browser that approved) or deny (identity None).
        The user code is spent either way."""
        await self._store.delete(_USER_CODE.format(digest(request.user_code)))
        key = _DEVICE.format(request.device_hash)
        doc = await self._sealed.get(key)
        if doc is None or doc["status"] != "pending":
            return
        if identity is None:
            doc["status"] = "denied"
        else:
            doc["status"] = "approved"
            doc["identity"] = encode_identity(identity)
            doc["session_expires_at"] = session_expires_at.timestamp()
        await self._sealed.put(key, doc, doc["expires_at"] + _DEVICE_GRACE - now.timestamp())

    async def wrong_guesses(self, who: str) -> int:
        raw = await self._store.get(_GUESSES.format(who))
        return int(raw) if raw is not None and raw.isdigit() else 0

    async def guessed_wrong(self, who: str) -> None:
        """Counted for as long as a code lives: guesses older than that aimed at codes that
        are gone. (Read then write: a race loses a count, never grants one.)"""
        count = await self.wrong_guesses(who) + 1
        await self._store.put(_GUESSES.format(who), str(count).encode(), DEVICE_SECONDS)

    async def poll_device(self, device_code: str, now: datetime) -> tuple[str, CliSession]:
        """RFC 8628 §3.4-3.5: pending, slow_down, access_denied, expired_token, or a token."""
        key = _DEVICE.format(digest(device_code))
        doc = await self._sealed.get(key)
        if doc is None:
            raise InvalidGrant("The device code is unknown; run broker login --device again.")
        if doc["expires_at"] <= now.timestamp():
            await self._store.delete(key)
            raise ExpiredToken("The device code has expired; run broker login --device again.")
        if doc["status"] == "denied":
            await self._store.delete(key)
            raise AccessDenied("The sign-in was denied in the browser.")
        if doc["status"] == "approved":
            taken = await self._sealed.take(key)  # one poll gets the token
            if taken is None or taken.get("status") != "approved":
                raise InvalidGrant("The device code was already used.")
            expires_at = datetime.fromtimestamp(taken["session_expires_at"], UTC)
            return await self.new_session(decode_identity(taken["identity"]), expires_at, now)
        last = doc["last_poll"]
        doc["last_poll"] = now.timestamp()
        too_soon = last is not None and now.timestamp() - last < doc["interval"]
        if too_soon:
            doc["interval"] += SLOW_DOWN_STEP
        await self._sealed.put(key, doc, doc["expires_at"] + _DEVICE_GRACE - now.timestamp())
        if too_soon:
            raise SlowDown(
                f"Polling too fast: wait {doc['interval']} seconds between requests.",
                extra={"interval": doc["interval"]},
            )
        raise AuthorizationPending("Waiting for the person to approve in the browser.")


def _left(until: datetime, now: datetime) -> float:
    return (until - now).total_seconds()


def _ended(why: str) -> SessionEnded:
    return SessionEnded(
        "Your command-line session has ended; run `broker login` again.",
        log_detail=why,
        headers={"WWW-Authenticate": 'Bearer realm="broker", error="invalid_token"'},
    )
