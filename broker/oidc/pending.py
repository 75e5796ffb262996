"""Pending OIDC sign-ins, kept in the browser that started them: a sealed cookie.

`GET /oidc/login` stores nothing on the server: the state, nonce and PKCE verifier travel in
a short-lived cookie, sealed (AES-256-GCM, broker/seal.py) so that only this broker reads or
makes one, and the verifier is never visible outside it. The callback takes an answer only
to a `state` this browser's own cookie names (RFC 6749 §10.12, login CSRF)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request, Response

from broker.errors import SessionExpired
from broker.seal import Sealer

#: How long a sign-in may wait at the IdP (people read, type, and use a second factor).
PENDING_SECONDS = 600
#: A few sign-ins at once (tabs); browsers keep at least 4096 bytes a cookie (RFC 6265 §6.1).
MAX_PENDING = 4
MAX_COOKIE_BYTES = 3800
COOKIE = "broker_oidc"
_CONTEXT = "broker.oidc.pending"


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    state: str  # RFC 6749 §4.1.1, random: the callback must bring it back
    nonce: str  # OIDC Core §3.1.2.1, random: the ID token must carry it
    verifier: str = ""  # RFC 7636 §4.1, the PKCE code_verifier; never leaves the broker
    idp: str = ""  # the identity provider it went to
    next: str = "/"  # where to go after the sign-in, checked by safe_next when it started
    started: float = 0.0  # epoch seconds
    # Started by this site or by the person (typed, bookmarked), not by another site's link.
    here: bool = True

    def __repr__(self) -> str:  # state, nonce and verifier stay out of any repr
        return f"PendingSignIn(idp={self.idp!r}, next={self.next!r}, started={self.started})"


class PendingSignIns:
    """The cookie's codec and attributes. Newest first; expired, altered or malformed values
    read as no pending sign-in."""

    def __init__(self, keys: Sequence[bytes], *, secure: bool) -> None:
        """`keys`: the current secret first, then those being retired (they still open)."""
        self._sealer = Sealer(keys)
        self._secure = secure
        # RFC 6265bis §4.1.3.2: a `__Host-` cookie is Secure, Path=/ and has no Domain, so no
        # sibling host can plant one. Plain http (loopback only) cannot set Secure: no prefix.
        self.cookie = "__Host-" + COOKIE if secure else COOKIE

    def read(self, request: Request, now: float) -> tuple[PendingSignIn, ...]:
        return self.loads(request.cookies.get(self.cookie), now)

    def loads(self, value: str | None, now: float) -> tuple[PendingSignIn, ...]:
        if not value or len(value) > MAX_COOKIE_BYTES:
            return ()
        try:
            sealed = base64.urlsafe_b64decode(value.encode("ascii") + b"==")
            rows = json.loads(self._sealer.open(sealed, context=_CONTEXT))
        except (SessionExpired, ValueError, UnicodeError, binascii.Error, RecursionError):
            return ()
        if not isinstance(rows, list):
            return ()
        out = []
        for row in rows[:MAX_PENDING]:
            pending = _pending(row)
            if pending is not None and 0 <= now - pending.started < PENDING_SECONDS:
                out.append(pending)
        return tuple(out)

    def dumps(self, pending: Sequence[PendingSignIn]) -> str:
        rows = [[p.state, p.nonce, p.verifier, p.idp, p.next, p.started, p.here] for p in pending]
        plain = json.dumps(rows, separators=(",", ":")).encode()
        sealed = self._sealer.seal(plain, context=_CONTEXT)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def add(
        self, pending: Sequence[PendingSignIn], new: PendingSignIn
    ) -> tuple[PendingSignIn, ...]:
        """`new` first; the oldest go when there are too many or the cookie grows too big."""
        kept = [new, *pending][:MAX_PENDING]
        while len(kept) > 1 and len(self.dumps(kept)) > MAX_COOKIE_BYTES:
            kept.pop()
        return tuple(kept)

    def write(self, response: Response, pending: Sequence[PendingSignIn]) -> None:
        if not pending:
            self.clear(response)
            return
        response.set_cookie(
            self.cookie,
            self.dumps(pending),
            max_age=PENDING_SECONDS,
            path="/",
            secure=self._secure,
            httponly=True,
            # The IdP sends the browser back with a top-level GET redirect (RFC 6749 §4.1.2),
            # which carries a Lax cookie; another site's subrequest or POST does not.
            samesite="lax",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie, path="/", secure=self._secure, httponly=True, samesite="lax"
        )


def find(pending: Sequence[PendingSignIn], state: str) -> PendingSignIn | None:
    """The sign-in `state` names, compared in constant time (it is a bearer secret)."""
    wanted = state.encode("utf-8", "surrogatepass")
    found = None
    for p in pending:
        if hmac.compare_digest(p.state.encode("utf-8", "surrogatepass"), wanted):
            found = p
    return found


def _pending(row: object) -> PendingSignIn | None:
    if not isinstance(row, list) or len(row) != 7:
        return None
    state, nonce, verifier, idp, next_path, started, here = row
    if not (
        all(isinstance(v, str) for v in (state, nonce, verifier, idp, next_path))
        and isinstance(started, int | float)
        and not isinstance(started, bool)
        and isinstance(here, bool)
    ):
        return None
    return PendingSignIn(state, nonce, verifier, idp, next_path, float(started), here)
