"""Sign compact JWS tokens byte by byte (any header, any payload text) and verify them offline.

The verifier's keys come through its real JwksCache, over an in-process httpx transport that
serves discovery and the JWKS: no sockets, and a count of every request made.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from broker.config import OidcIdp
from broker.oidc.jwks import JwksCache
from broker.oidc.verify import OidcVerifier

ISSUER = "https://issuer.example"
AUDIENCE = "sts.amazonaws.com"
KID = "k1"
NOW = 1_700_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def sign(key: rsa.RSAPrivateKey, header: str, payload: str) -> str:
    """A token over exactly these JSON texts, RS256-signed."""
    signing_input = f"{b64(header.encode())}.{b64(payload.encode())}"
    sig = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(sig)}"


def claims(**over: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "iat": NOW - 10,
        "exp": NOW + 300,
        **over,
    }


def header(**over: Any) -> dict[str, Any]:
    return {
        k: v for k, v in {"alg": "RS256", "kid": KID, "typ": "JWT", **over}.items() if v is not None
    }


def token(key: rsa.RSAPrivateKey, hdr: dict[str, Any] | None = None, **claim_over: Any) -> str:
    return sign(key, text(header() if hdr is None else hdr), text(claims(**claim_over)))


class OfflineIdp:
    """A verifier for one IdP whose discovery and JWKS are served in-process."""

    def __init__(self, key: rsa.RSAPrivateKey, **idp_over: Any) -> None:
        jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
        jwk.update(kid=KID, alg="RS256", use="sig")
        self.requests = 0

        def serve(request: httpx.Request) -> httpx.Response:
            self.requests += 1
            if request.url.path == "/.well-known/openid-configuration":
                return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks"})
            return httpx.Response(200, json={"keys": [jwk]})

        self.http = httpx.AsyncClient(transport=httpx.MockTransport(serve))
        self.idp = OidcIdp.model_validate(
            {"type": "oidc", "issuer": ISSUER, "audiences": [AUDIENCE], **idp_over}
        )
        self.verifier = OidcVerifier({"ci": self.idp}, {"ci": JwksCache(self.idp, self.http)})
