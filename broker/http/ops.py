"""Operations routes: liveness, readiness (the store answers), Prometheus metrics."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.errors import BrokerError, InvalidToken, MissingToken
from broker.http.deps import RuntimeDep

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


def router() -> APIRouter:
    ops = APIRouter()

    @ops.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @ops.get("/readyz")
    async def readyz(rt: RuntimeDep) -> Response:
        ok = await rt.store.ping()
        return JSONResponse(
            {"status": "ok" if ok else "store unavailable"}, status_code=200 if ok else 503
        )

    @ops.get("/metrics")
    async def metrics(request: Request, rt: RuntimeDep) -> Response:
        token_file = rt.config.server.metrics_token_file
        if token_file is not None:
            await _check_token(request, token_file)
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return ops


async def _check_token(request: Request, token_file: Path) -> None:
    """RFC 6750 §2.1 bearer token, compared in constant time (hashes of equal length, so not
    even the token's length shows in the timing). Unreadable or empty: nobody gets in."""
    try:
        expected = (await anyio.Path(token_file).read_bytes()).strip()
    except OSError as exc:
        raise BrokerError(
            "The metrics endpoint is not configured correctly.",
            log_detail=f"server.metrics_token_file: cannot read: {exc.strerror}",
        ) from None
    if not expected:
        raise BrokerError(
            "The metrics endpoint is not configured correctly.",
            log_detail="server.metrics_token_file is empty",
        )
    scheme, _, sent = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not sent.strip():
        raise MissingToken(
            "Send the metrics token as `Authorization: Bearer <token>`.", headers=_CHALLENGE
        )
    given = hashlib.sha256(sent.strip().encode()).digest()
    if not hmac.compare_digest(given, hashlib.sha256(expected).digest()):
        raise InvalidToken("The metrics token is not valid.", headers=_CHALLENGE)
