"""A tiny OIDC issuer peer for the AWS stand-in's tests: discovery and JWKS over HTTP, keys made per run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CLIENT_ID = "sts.amazonaws.com"
SUBJECT = "repo:acme/app:ref:refs/heads/main"


@dataclass
class Issuer:
    """Mints RS256/ES256 tokens; `published` kids are in its JWKS."""

    url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    published: list[str] = field(default_factory=list)  # kids in the JWKS
    fetches: int = 0

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid in self.published:
            key = self.keys[kid]
            algo = (
                jwt.algorithms.RSAAlgorithm
                if isinstance(key, rsa.RSAPrivateKey)
                else jwt.algorithms.ECAlgorithm
            )
            jwk = json.loads(algo.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def token(
        self, *, kid: str = "rsa1", alg: str = "RS256", key: Any = None, **claims: Any
    ) -> str:
        """A token for STS; a claim given as None is left out."""
        now = int(time.time())
        body = {"iss": self.url, "sub": SUBJECT, "aud": CLIENT_ID}
        body |= {"iat": now, "exp": now + 300} | claims
        signing_key = key if key is not None else self.keys[kid]
        return jwt.encode(
            {k: v for k, v in body.items() if v is not None}, signing_key, alg, {"kid": kid}
        )


def issuer_app(issuer: Issuer) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})

    async def jwks(request: Request) -> JSONResponse:
        issuer.fetches += 1
        return JSONResponse(issuer.jwks())

    return Starlette(
        routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)]
    )
