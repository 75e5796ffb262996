"""The sign-in request's checks: loopback redirects only (RFC 8252 §7.3), S256 only, and PKCE's
verifier against its challenge (RFC 7636 §4.6)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from broker.errors import InvalidParameter, RedirectNotAllowed
from broker.terminal import checks


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:49152/callback",
        "http://127.0.0.1:1/",
        "http://[::1]:8400/callback",
        "http://localhost:65535/cb?x=1",
        "http://LOCALHOST:8080/",
    ],
)
def test_loopback_redirects_on_any_port_are_taken(uri: str) -> None:
    assert checks.loopback_redirect(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        None,
        "",
        "https://127.0.0.1:8443/callback",  # §7.3: http; a loopback listener has no certificate
        "http://127.0.0.1/callback",  # no port: not the listener's
        "http://127.0.0.2:8000/callback",
        "http://evil.example:8000/callback",
        "http://127.0.0.1.evil.example:8000/",
        "http://localhost.evil.example:8000/",
        "http://user@127.0.0.1:8000/",
        "http://127.0.0.1:8000@evil.example/",
        "http://127.0.0.1:8000/cb#frag",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:8000/\\evil",
        "http://127.0.0.1:8000/a b",
        "http://0.0.0.0:8000/",
        "http://[::ffff:127.0.0.1]:8000/",
        "javascript:alert(1)//127.0.0.1:80",
        "myapp://127.0.0.1:80/",
        "http://127.0.0.1:8000/" + "a" * 600,
    ],
    ids=repr,
)
def test_anything_else_never_gets_a_redirect(uri: str | None) -> None:
    with pytest.raises(RedirectNotAllowed):
        checks.loopback_redirect(uri)


def _challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def test_rfc_7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert _challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert checks.verifier_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


@pytest.mark.parametrize(
    "verifier",
    ["dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", "short", "x" * 129, "é" * 43, ""],
    ids=["another", "short", "long", "non-ascii", "empty"],
)
def test_a_wrong_or_malformed_verifier_does_not_match(verifier: str) -> None:
    assert not checks.verifier_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c", "S256"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", "S256"),
        (None, "S256"),
    ],
)
def test_only_s256_challenges(challenge: str | None, method: str | None) -> None:
    with pytest.raises(InvalidParameter):
        checks.s256_challenge(challenge, method)


def test_user_codes_are_typed_loosely_and_shown_in_halves() -> None:
    code = checks.new_user_code()
    assert len(code) == 8
    assert set(code) <= set(checks.USER_CODE_ALPHABET)
    shown = checks.show_user_code(code)
    assert shown[4] == "-"
    assert checks.user_code(shown.lower()) == code
    assert checks.user_code(" " + shown + " ") == code
    for bad in ("", "ABCD-EFGH", "BCDF-GHJ", "BCDF-GHJKL", "0000-0000", "x" * 40):
        assert checks.user_code(bad) is None


def test_the_alphabet_has_no_vowels_and_nothing_to_confuse() -> None:
    assert not set(checks.USER_CODE_ALPHABET) & set("AEIOUY01")
