"""create_app(config): routers, middleware, error handlers, and the pooled clients' lifespan."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker import problems
from broker.api import RuntimeDep
from broker.api import router as api_router
from broker.audit import Audit
from broker.config import Config, OidcIdp
from broker.errors import (
    RequestTooLarge,
)
from broker.oidc.jwks import JwksCache
from broker.oidc.verify import OidcVerifier
from broker.problems import problem
from broker.runtime import Runtime, StartupHook
from broker.store import open_store
from broker.sts import StsClient

log = logging.getLogger("broker")
_KNOWN_ROUTES = frozenset(
    {"/v1/credentials", "/v1/container-credentials", "/v1/roles", "/healthz", "/readyz", "/metrics"}
)


def create_app(
    config: Config,
    *,
    routers: tuple[APIRouter, ...] = (),
    startup_hooks: tuple[StartupHook, ...] = (),
) -> FastAPI:
    """The OIDC API and probes are always on; other front doors (SAML, browser sessions)
    come as routers plus startup hooks, see broker.frontdoors."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = httpx.AsyncClient(follow_redirects=False, timeout=5.0)
        sts = StsClient(config.aws)
        await sts.start()
        store = open_store(config.store)
        audit = Audit(config.audit)
        oidc_idps = {n: i for n, i in config.identity_providers.items() if isinstance(i, OidcIdp)}
        keys = {name: JwksCache(idp, http) for name, idp in oidc_idps.items()}
        rt = Runtime(config, sts, store, audit, OidcVerifier(oidc_idps, keys), http)
        app.state.runtime = rt
        try:
            for hook in startup_hooks:
                await hook(rt, app)
            yield
        finally:
            await sts.close()
            await http.aclose()
            await store.close()
            audit.close()

    app = FastAPI(
        title="broker",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # The broker exports Prometheus metrics and audit events of its own; FastAPI's
        # OpenTelemetry hooks cost an environment lookup on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for router in (api_router, _ops_router(), *routers):
        _mount(app, router)
    problems.install(app)
    app.add_middleware(Guard, max_body=config.server.max_body_bytes)
    return app


def _mount(app: FastAPI, router: APIRouter) -> None:
    """Register a module's routes on the app itself. include_router() keeps each router as a
    lazily matched branch, which bench/ measured at ~8% of an exchange's CPU."""
    for route in router.routes:
        if not isinstance(route, APIRoute):  # a plain Starlette endpoint (see broker.api)
            assert isinstance(route, Route)
            app.add_route(route.path, route.endpoint, methods=sorted(route.methods or ()))
            continue
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            name=route.name,
            response_class=route.response_class,
        )


def _ops_router() -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(rt: RuntimeDep) -> Response:
        ok = await rt.store.ping()
        return JSONResponse(
            {"status": "ok" if ok else "store unavailable"}, status_code=200 if ok else 503
        )

    @router.get("/metrics")
    async def metrics(rt: RuntimeDep) -> Response:
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


class Guard:
    """Pure ASGI: cap the body before anything parses it (Starlette's form limits don't
    cover urlencoded bodies), set safe headers, count requests."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        status = 500
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            response = problem(
                RequestTooLarge(f"The request body is over {self.max_body} bytes."), scope
            )
            await response(scope, receive, send)
            _observe(scope, path, 413, started)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise RequestTooLarge(f"The request body is over {self.max_body} bytes.")
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in _SAFE_HEADERS:
                    if k not in names:
                        headers.append((k, v))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited, send_with_headers)
        finally:
            _observe(scope, path, status, started)


_SAFE_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def _content_length(scope: Scope) -> int | None:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _observe(scope: Scope, path: str, status: int, started: float) -> None:
    app = scope.get("app")
    rt: Runtime | None = getattr(getattr(app, "state", None), "runtime", None)
    if rt is None:
        return
    route = path if path in _KNOWN_ROUTES or path.startswith(("/saml/", "/oidc/")) else "other"
    rt.metrics.request(route, status, time.perf_counter() - started)


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: config from $BROKER_CONFIG."""
    from broker import frontdoors
    from broker.config import load_config

    config = load_config()
    return create_app(
        config,
        routers=frontdoors.routers(config),
        startup_hooks=(*frontdoors.startup_hooks(config), _settle_garbage_collector),
    )


async def _settle_garbage_collector(rt: Runtime, app: FastAPI) -> None:
    """A serving process: everything built at startup lives as long as the process, so move
    it out of the collector's sight, and collect young objects less often. Each request
    allocates a few hundred short-lived objects; the default threshold (700) runs a
    collection every couple of requests."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
