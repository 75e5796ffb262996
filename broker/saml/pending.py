"""Pending SP-initiated sign-ins, kept in the browser that started them: a signed cookie.

The store holds nothing for a sign-in until a signed response comes back, so anonymous
`GET /saml/login` costs the server nothing, and the ACS takes an answer only to a request the
posting browser itself started (OWASP CSRF cheat sheet, "login CSRF")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from broker.http.pending import MAX_COOKIE_BYTES, MAX_PENDING, PENDING_SECONDS, PendingCookie

__all__ = ["MAX_COOKIE_BYTES", "MAX_PENDING", "PENDING_SECONDS", "PendingLogin", "PendingLogins"]

COOKIE = "broker_login"


@dataclass(frozen=True, slots=True)
class PendingLogin:
    request_id: str  # the AuthnRequest's ID, which its answer names in InResponseTo
    idp: str  # the identity provider it went to
    next: str  # where to go after the sign-in, checked by safe_next when it started
    started: float  # epoch seconds
    # Started by this site or by the person (typed, bookmarked), not by another site's link:
    # the browser then goes on to `next` without asking first.
    here: bool


class PendingLogins(PendingCookie[PendingLogin]):
    """Signed, not encrypted: it names request IDs that only this browser and the IdP have
    seen, and paths on the broker."""

    def __init__(self, keys: bytes | Sequence[bytes], *, secure: bool) -> None:
        """`keys`: the current secret first, then those being retired (they still verify)."""
        ordered = [keys] if isinstance(keys, bytes) else list(keys)
        # itsdangerous signs with the last key and accepts any of them.
        self._signer = URLSafeSerializer(list(reversed(ordered)), salt="broker.saml.pending")
        # The IdP answers with a cross-site POST to the ACS (SAML Bindings §3.5): a Lax
        # cookie is not sent on it, a SameSite=None one is, and browsers accept None only
        # with Secure. Over http (loopback only) no attribute is set: the demo's and the
        # tests' IdPs share the broker's site (127.0.0.1), and Chrome's default-Lax still
        # sends an attribute-less cookie on a top-level POST within two minutes of setting
        # it ("Lax+POST").
        super().__init__(COOKIE, secure=secure, samesite="none" if secure else None)

    def _protect(self, rows: list[list[Any]]) -> str:
        return str(self._signer.dumps(rows))

    def _open(self, value: str) -> object:
        try:
            return self._signer.loads(value)
        except BadData as exc:
            raise ValueError("not signed by this broker") from exc

    def _row(self, item: PendingLogin) -> list[Any]:
        return [item.request_id, item.idp, item.next, item.started, item.here]

    def _parse(self, row: object) -> PendingLogin | None:
        return _login(row)


def _login(row: object) -> PendingLogin | None:
    if not isinstance(row, list) or len(row) != 5:
        return None
    request_id, idp, next_path, started, here = row
    if not (
        isinstance(request_id, str)
        and isinstance(idp, str)
        and isinstance(next_path, str)
        and isinstance(started, int | float)
        and isinstance(here, bool)
    ):
        return None
    return PendingLogin(request_id, idp, next_path, float(started), here)
