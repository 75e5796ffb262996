"""Pending SP-initiated sign-ins, kept in the browser that started them: a signed cookie.

The store holds nothing for a sign-in until a signed response comes back, so anonymous
`GET /saml/login` costs the server nothing, and the ACS takes an answer only to a request the
posting browser itself started (OWASP CSRF cheat sheet, "login CSRF")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadData, URLSafeSerializer

#: As long as an AuthnRequest may wait for its answer.
PENDING_SECONDS = 600
#: A few sign-ins at once (tabs); browsers keep at least 4096 bytes a cookie (RFC 6265 §6.1).
MAX_PENDING = 4
MAX_COOKIE_BYTES = 3800
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


class PendingLogins:
    """The cookie's codec and attributes. Newest first; expired, unsigned or malformed
    values read as no pending sign-in."""

    def __init__(self, keys: bytes | Sequence[bytes], *, secure: bool) -> None:
        """`keys`: the current secret first, then those being retired (they still verify)."""
        ordered = [keys] if isinstance(keys, bytes) else list(keys)
        # itsdangerous signs with the last key and accepts any of them.
        self._signer = URLSafeSerializer(list(reversed(ordered)), salt="broker.saml.pending")
        self._secure = secure
        # RFC 6265bis §4.1.3.2: a `__Host-` cookie is Secure, Path=/ and has no Domain, so no
        # other host (a sibling subdomain) can plant or overwrite it. Plain http (loopback
        # only: config refuses http elsewhere) cannot set a Secure cookie, hence no prefix.
        self.cookie = "__Host-" + COOKIE if secure else COOKIE

    def read(self, request: Request, now: float) -> tuple[PendingLogin, ...]:
        return self.loads(request.cookies.get(self.cookie), now)

    def loads(self, value: str | None, now: float) -> tuple[PendingLogin, ...]:
        if not value or len(value) > MAX_COOKIE_BYTES:
            return ()
        try:
            rows = self._signer.loads(value)
        except (BadData, ValueError):
            return ()
        if not isinstance(rows, list):
            return ()
        out = []
        for row in rows[:MAX_PENDING]:
            login = _login(row)
            if login is not None and 0 <= now - login.started < PENDING_SECONDS:
                out.append(login)
        return tuple(out)

    def dumps(self, logins: Sequence[PendingLogin]) -> str:
        rows = [[p.request_id, p.idp, p.next, p.started, p.here] for p in logins]
        return str(self._signer.dumps(rows))

    def add(self, logins: Sequence[PendingLogin], login: PendingLogin) -> tuple[PendingLogin, ...]:
        """`login` first; the oldest go when there are too many or the cookie grows too big."""
        kept = [login, *logins][:MAX_PENDING]
        while len(kept) > 1 and len(self.dumps(kept)) > MAX_COOKIE_BYTES:
            kept.pop()
        return tuple(kept)

    def write(self, response: Response, logins: Sequence[PendingLogin]) -> None:
        if not logins:
            self.clear(response)
            return
        response.set_cookie(
            self.cookie,
            self.dumps(logins),
            max_age=PENDING_SECONDS,
            path="/",
            secure=self._secure,
            httponly=True,
            # The IdP answers with a cross-site POST to the ACS (SAML Bindings §3.5): a Lax
            # cookie is not sent on it, a SameSite=None one is, and browsers accept None only
            # with Secure. Over http (loopback only) no attribute is set: the demo's and the
            # tests' IdPs share the broker's site (127.0.0.1), and Chrome's default-Lax still
            # sends an attribute-less cookie on a top-level POST within two minutes of setting
            # it ("Lax+POST"). Signed, not encrypted: it names request IDs that only this
            # browser and the IdP have seen, and paths on the broker.
            samesite="none" if self._secure else None,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="none" if self._secure else None,
        )


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
