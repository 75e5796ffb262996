"""Pending OIDC sign-ins, kept in the browser that started them: a sealed cookie.

`GET /oidc/login` stores nothing on the server: the state, nonce and PKCE verifier travel in
a short-lived cookie, sealed (AES-256-GCM, broker/seal.py) so that only this broker reads or
makes one, and the verifier is never visible outside it. The callback takes an answer only
to a `state` this browser's own cookie names (RFC 6749 §10.12, login CSRF)."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from broker.errors import SessionExpired
from broker.http.pending import MAX_COOKIE_BYTES, MAX_PENDING, PENDING_SECONDS, PendingCookie
from broker.seal import Sealer

__all__ = [
    "MAX_COOKIE_BYTES",
    "MAX_PENDING",
    "PENDING_SECONDS",
    "PendingSignIn",
    "PendingSignIns",
    "find",
]

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


class PendingSignIns(PendingCookie[PendingSignIn]):
    """Sealed: the PKCE verifier and the nonce are never visible outside the broker."""

    def __init__(self, keys: Sequence[bytes], *, secure: bool) -> None:
        """`keys`: the current secret first, then those being retired (they still open)."""
        self._sealer = Sealer(keys)
        # The IdP sends the browser back with a top-level GET redirect (RFC 6749 §4.1.2),
        # which carries a Lax cookie; another site's subrequest or POST does not.
        super().__init__(COOKIE, secure=secure, samesite="lax")

    def _protect(self, rows: list[list[Any]]) -> str:
        plain = json.dumps(rows, separators=(",", ":")).encode()
        sealed = self._sealer.seal(plain, context=_CONTEXT)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def _open(self, value: str) -> object:
        try:
            sealed = base64.urlsafe_b64decode(value.encode("ascii") + b"==")
            return json.loads(self._sealer.open(sealed, context=_CONTEXT))
        except (SessionExpired, RecursionError) as exc:
            raise ValueError("not sealed by this broker") from exc

    def _row(self, p: PendingSignIn) -> list[Any]:
        return [p.state, p.nonce, p.verifier, p.idp, p.next, p.started, p.here]

    def _parse(self, row: object) -> PendingSignIn | None:
        return _pending(row)


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
