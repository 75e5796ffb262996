"""What the command line's sign-in requests must be: its client, loopback redirect, PKCE, codes.

Pure: no I/O, no FastAPI. Every check raises the broker's own errors with a stable code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from broker.errors import InvalidParameter, RedirectNotAllowed

CLIENT_ID = "broker-cli"
#: RFC 7636 §4.1: code_verifier = 43*128unreserved.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: RFC 7636 §4.2: S256's challenge is BASE64URL(SHA256(verifier)) without padding: 43 chars.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_\-]{43}")
#: RFC 6749 §4.1.1: state is opaque to us; printable ASCII, bounded so it cannot grow URLs.
_STATE = re.compile(r"[\x20-\x7e]{1,512}")
#: RFC 8628 §6.1: its 20 consonants (no vowels, so no words; no digits to mistake for O or I).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def client_id(value: str | None) -> str:
    """A public client (RFC 8252 §8.4): the id names it, it proves nothing; PKCE does."""
    if value != CLIENT_ID:
        raise InvalidParameter(f"client_id must be {CLIENT_ID!r}.")
    return value


def loopback_redirect(value: str | None) -> str:
    """RFC 8252 §7.3: a native app's redirect is http to a loopback address, on any port;
    §8.3: `localhost` is allowed but discouraged. Anything else never gets a redirect."""
    if not value or len(value) > 512:
        raise RedirectNotAllowed("redirect_uri must be http://127.0.0.1:PORT/… (loopback).")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise RedirectNotAllowed("redirect_uri is not a valid URL.") from None
    host = (parts.hostname or "").lower()
    if (
        parts.scheme != "http"
        or host not in LOOPBACK_HOSTS
        or parts.username is not None
        or parts.password is not None
        or parts.fragment
        or port is None
        or "\\" in value
        or any(ord(c) <= 0x20 or c == "\x7f" for c in value)
    ):
        raise RedirectNotAllowed(
            "redirect_uri must be http://127.0.0.1:PORT/…, http://[::1]:PORT/… or "
            "http://localhost:PORT/… (RFC 8252 §7.3).",
            log_detail="redirect_uri refused",
        )
    return value


def s256_challenge(value: str | None, method: str | None) -> str:
    """RFC 7636 §4.3 with `plain` refused (§7.2: S256 is the one to use)."""
    if method != "S256":
        raise InvalidParameter("code_challenge_method must be S256.")
    if not value or not _S256_CHALLENGE.fullmatch(value):
        raise InvalidParameter("code_challenge must be 43 base64url characters (S256).")
    return value


def state(value: str | None) -> str:
    if not value or not _STATE.fullmatch(value):
        raise InvalidParameter("state must be 1 to 512 printable characters.")
    return value


def verifier_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=")
    return hmac.compare_digest(computed, challenge.encode("ascii"))


def new_user_code() -> str:
    """Eight characters of a 20-letter alphabet: 20**8 ≈ 2.6e10, against the handful of
    guesses a browser session gets (RFC 8628 §5.1)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def show_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def user_code(value: str | None) -> str | None:
    """What a person typed, normalized (RFC 8628 §6.1: case and dashes ignored); None when it
    cannot be a code at all."""
    if not value or len(value) > 32:
        return None
    code = "".join(c for c in value.upper() if c not in "- ")
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def digest(secret: str) -> str:
    """What the store keys a one-time secret by: its SHA-256, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()
