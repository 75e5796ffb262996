"""Read a JWS in compact serialization strictly: three base64url parts, two bounded JSON objects.

Everything here happens before any key is fetched or any signature checked, so a token that
is not exactly what RFC 7515 and RFC 7519 describe costs nothing but this parse.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from broker.errors import InvalidToken

# RFC 7515 §2 and RFC 4648 §5: the URL-safe alphabet, with the padding "=" omitted.
_B64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
# Nesting deeper than this is refused before parsing: json's recursion would otherwise hit
# Python's limit (RecursionError, a 500). Real issuers nest three or four levels.
MAX_DEPTH = 32
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


@dataclass(frozen=True, slots=True)
class Compact:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse(token: str) -> Compact:
    """RFC 7515 §7.1: BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)."""
    parts = token.split(".")
    if len(parts) != 3:
        # Five parts is a JWE, one is the JSON serialization: neither is a signed credential.
        raise InvalidToken("The token is not a signed JWT (JWS compact serialization).")
    header = _json(b64url(parts[0], "header"), "header")
    claims = _json(b64url(parts[1], "payload"), "payload")
    signature = b64url(parts[2], "signature")
    return Compact(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def b64url(part: str, what: str) -> bytes:
    """RFC 7515 §2: base64url without padding. No "=", no "+" or "/", no whitespace, and the
    canonical encoding only (RFC 4648 §3.5: unused bits zero), so one token has one spelling."""
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise InvalidToken(f"The token's {what} is not unpadded base64url.")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"The token's {what} is not unpadded base64url.") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != part.encode("ascii"):
        raise InvalidToken(f"The token's {what} is not canonical base64url.")
    return raw


def _json(raw: bytes, what: str) -> dict[str, Any]:
    """RFC 8259: UTF-8, no NaN or Infinity; RFC 7515 §4 / RFC 7519 §4: member names unique."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken(f"The token's {what} is not UTF-8.") from None
    if not _shallow(text):
        raise InvalidToken(f"The token's {what} nests deeper than {MAX_DEPTH} levels.")
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
        if "\\u" in text:  # an escaped lone surrogate is no text at all (RFC 8259 §8.2)
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise InvalidToken(f"The token's {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"The token's {what} is not a JSON object.")
    return value


def _shallow(text: str) -> bool:
    """True if no bracket nests deeper than MAX_DEPTH, counting only brackets outside strings."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return True
    depth = 0
    for m in _BRACKETS.finditer(_STRING.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return False
    return True


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key[:64]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
