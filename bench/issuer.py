"""A static OIDC issuer for the bench: a fresh RSA key, N distinct tokens, discovery and JWKS."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

AUDIENCE = "sts.amazonaws.com"
SUBJECT_PREFIX = "bench-user-"
KID = "bench-1"


def _mint_range(pem: bytes, issuer: str, start: int, stop: int, exp: int) -> list[str]:
    key = serialization.load_pem_private_key(pem, password=None)
    now = int(time.time())
    tokens = []
    for i in range(start, stop):
        claims = {
            "iss": issuer,
            "aud": AUDIENCE,
            "sub": f"{SUBJECT_PREFIX}{i:06d}",
            "jti": secrets.token_hex(16),
            "iat": now,
            "nbf": now - 5,
            "exp": exp,
        }
        tokens.append(jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID}))
    return tokens


def mint(key: rsa.RSAPrivateKey, issuer: str, count: int, lifetime: int) -> list[str]:
    """Distinct `sub` and `jti` per token; signing is ~0.35 ms each, so use every core."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    exp = int(time.time()) + lifetime
    workers = os.cpu_count() or 1
    step = -(-count // workers)
    with ProcessPoolExecutor(workers) as pool:
        futures = [
            pool.submit(_mint_range, pem, issuer, lo, min(lo + step, count), exp)
            for lo in range(0, count, step)
        ]
        return [token for future in futures for token in future.result()]


def app(issuer: str, key: rsa.RSAPrivateKey) -> Starlette:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
    discovery = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }

    async def well_known(request: object) -> JSONResponse:
        return JSONResponse(discovery)

    async def jwks(request: object) -> JSONResponse:
        return JSONResponse({"keys": [jwk]})

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", well_known),
            Route("/jwks", jwks),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=30_000)
    parser.add_argument("--lifetime", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument("--out", type=Path, required=True, help="file for the tokens, one a line")
    args = parser.parse_args(argv)

    issuer = f"http://127.0.0.1:{args.port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    started = time.perf_counter()
    tokens = mint(key, issuer, args.tokens, args.lifetime)
    partial = args.out.with_suffix(".partial")
    partial.write_text("\n".join(tokens) + "\n", encoding="ascii")
    partial.rename(args.out)  # the driver waits for this name: the file is whole when it appears
    print(
        f"issuer: minted {len(tokens)} RS256 tokens in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    uvicorn.run(
        app(issuer, key),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
