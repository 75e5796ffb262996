"""Edge-case JWTs: whatever claims a test needs, signed with the issuer's real key, or attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import jwt


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    jwk: Mapping[str, Any], claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None
) -> str:
    """A token signed by the issuer's real key, with whatever claims a test needs."""
    key = jwt.PyJWK(dict(jwk)).key
    hdrs = {"kid": jwk["kid"], **(headers or {})}
    return jwt.encode(dict(claims), key, algorithm=jwk["alg"], headers=hdrs)


def unsigned(claims: Mapping[str, Any], header: Mapping[str, Any]) -> str:
    h = b64url(json.dumps(dict(header)).encode())
    p = b64url(json.dumps(dict(claims)).encode())
    return f"{h}.{p}."


def hs256_with_public_key(pem: bytes, claims: Mapping[str, Any], kid: str) -> str:
    """The classic algorithm-confusion attack: HMAC keyed with the issuer's public key."""
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    p = b64url(json.dumps(dict(claims)).encode())
    sig = hmac.new(pem, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"
