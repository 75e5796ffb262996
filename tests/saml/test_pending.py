"""The pending-login cookie: signed, short-lived, bounded, and `__Host-` with SameSite=None
over https so the IdP's cross-site POST to the ACS carries it."""

from __future__ import annotations

import time

import pytest
from fastapi.responses import Response

from broker.saml.pending import (
    MAX_COOKIE_BYTES,
    PENDING_SECONDS,
    PendingLogin,
    PendingLogins,
)

SECRET = b"s" * 32


def _login(n: int, started: float, next_path: str = "/", here: bool = True) -> PendingLogin:
    return PendingLogin(f"_{n:040x}", "corp", next_path, started, here)


def _set_cookie(jar: PendingLogins, logins: list[PendingLogin]) -> str:
    response = Response()
    jar.write(response, logins)
    [header] = [v for k, v in response.headers.items() if k == "set-cookie"]
    return header


def _attributes(header: str) -> list[str]:
    return [a.strip().lower() for a in header.split(";")[1:]]


def test_over_https_the_cookie_is_host_prefixed_secure_and_sent_cross_site() -> None:
    """RFC 6265bis §4.1.3.2 (`__Host-`: Secure, Path=/, no Domain); SameSite=None so the
    IdP's HTTP-POST to the ACS (SAML Bindings §3.5) carries it."""
    jar = PendingLogins(SECRET, secure=True)
    header = _set_cookie(jar, [_login(1, time.time())])
    assert jar.cookie == "__Host-broker_login"
    assert header.startswith("__Host-broker_login=")
    attributes = _attributes(header)
    for attribute in ("secure", "httponly", "path=/", "samesite=none"):
        assert attribute in attributes
    assert not any(a.startswith("domain") for a in attributes)
    assert f"max-age={PENDING_SECONDS}" in attributes


def test_on_http_loopback_the_cookie_sets_no_samesite() -> None:
    jar = PendingLogins(SECRET, secure=False)
    header = _set_cookie(jar, [_login(1, time.time())])
    assert jar.cookie == "broker_login"
    attributes = _attributes(header)
    assert "secure" not in attributes
    assert not any(a.startswith("samesite") for a in attributes)


def test_round_trip_newest_first() -> None:
    jar = PendingLogins(SECRET, secure=True)
    now = time.time()
    logins = [_login(2, now, "/?b", here=False), _login(1, now - 5, "/?a")]
    assert jar.loads(jar.dumps(logins), now) == tuple(logins)


def test_expired_entries_are_gone() -> None:
    jar = PendingLogins(SECRET, secure=True)
    now = time.time()
    value = jar.dumps([_login(2, now - 10), _login(1, now - PENDING_SECONDS - 1)])
    assert [p.request_id for p in jar.loads(value, now)] == [_login(2, now).request_id]
    assert jar.loads(value, now + PENDING_SECONDS) == ()


@pytest.mark.parametrize(
    "value",
    [None, "", "e30", "x" * 5000, "not.signed", "W10.bad-signature"],
)
def test_anything_unsigned_is_no_pending_login(value: str | None) -> None:
    assert PendingLogins(SECRET, secure=True).loads(value, time.time()) == ()


def test_another_secret_is_no_pending_login() -> None:
    now = time.time()
    value = PendingLogins(b"o" * 32, secure=True).dumps([_login(1, now)])
    assert PendingLogins(SECRET, secure=True).loads(value, now) == ()


def test_bounded_newest_kept() -> None:
    jar = PendingLogins(SECRET, secure=True)
    now = time.time()
    logins: tuple[PendingLogin, ...] = ()
    for n in range(20):
        logins = jar.add(logins, _login(n, now + n, "/" + "x" * 2047))
        assert len(jar.dumps(logins)) <= MAX_COOKIE_BYTES
    assert logins[0].request_id == _login(19, now).request_id
    short: tuple[PendingLogin, ...] = ()
    for n in range(20):
        short = jar.add(short, _login(n, now + n))
    assert 1 < len(short) < 20
