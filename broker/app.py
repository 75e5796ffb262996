"""create_app(config): routers, middleware, error handlers, and the pooled clients' lifespan."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.api import NO_STORE, RuntimeDep
from broker.api import router as api_router
from broker.audit import Audit
from broker.config import Config, OidcIdp
from broker.errors import (
    BrokerError,
    InvalidParameter,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)
from broker.exchange import new_error_id
from broker.oidc.jwks import JwksCache
from broker.oidc.verify import OidcVerifier
from broker.runtime import Runtime, StartupHook
from broker.store import open_store
from broker.sts import StsClient

log = logging.getLogger("broker")
templates = Environment(
    loader=PackageLoader("broker", "templates"), autoescape=select_autoescape(), enable_async=False
)
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
    app.add_exception_handler(BrokerError, _broker_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
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


def wants_html(scope: Scope) -> bool:
    if scope["path"].startswith("/v1/"):
        return False
    accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
    return "text/html" in accept


def problem(exc: BrokerError, scope: Scope) -> Response:
    """RFC 9457 problem details (or an error page for a browser); never a stack trace."""
    error_id = exc.error_id or new_error_id()
    exc.error_id = error_id
    level = logging.ERROR if exc.status >= 500 else logging.INFO
    log.log(
        level,
        "refused %s status=%d error_id=%s path=%s detail=%s%s",
        exc.code,
        exc.status,
        error_id,
        scope.get("path"),
        exc.detail,
        f" log_detail={exc.log_detail}" if exc.log_detail else "",
    )
    headers = {**NO_STORE, **exc.headers}
    if wants_html(scope):
        page = templates.get_template("error.html").render(
            title=exc.title, detail=exc.detail, code=exc.code, error_id=error_id
        )
        return HTMLResponse(page, status_code=exc.status, headers=headers)
    body = {
        "type": f"urn:broker:error:{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
        "error_id": error_id,
        **exc.extra,
    }
    return JSONResponse(
        body, status_code=exc.status, headers=headers, media_type="application/problem+json"
    )


async def _broker_error(request: Request, exc: BrokerError) -> Response:
    return problem(exc, request.scope)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's default echoes the input, which may be a token: name the field only.
    fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
    return problem(
        InvalidParameter(f"Invalid parameter(s): {', '.join(fields) or 'request'}."), request.scope
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    err: BrokerError
    if exc.status_code == 404:
        err = NotFound("There is nothing at this address.")
    elif exc.status_code == 405:
        err = MethodNotAllowed("This address does not take that method.", headers=exc.headers)
    else:
        err = MalformedRequest("The request could not be understood.", headers=exc.headers)
    return problem(err, request.scope)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):  # the caller went away; nobody to answer
        log.info("client disconnected path=%s", request.url.path)
        return Response(status_code=400)
    error_id = new_error_id()
    log.error(
        "unexpected %s error_id=%s path=%s",
        type(exc).__name__,
        error_id,
        request.url.path,
        exc_info=exc,
    )
    err = BrokerError("The broker hit an unexpected error; it has been logged.")
    err.error_id = error_id
    return problem(err, request.scope)


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
