"""Operations routes: liveness, readiness (the store answers), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.http.deps import RuntimeDep


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
    async def metrics(rt: RuntimeDep) -> Response:
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return ops
