"""create_app(config): the front doors a config switches on, middleware, and the lifespan that
opens the pooled clients every front door shares."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from broker.audit import Audit
from broker.aws.sts import StsClient
from broker.browser.picker import BrowserFrontDoor
from broker.clock import SYSTEM_CLOCK, Clock
from broker.config import Config, OidcIdp
from broker.console_url.federation import Federation
from broker.exchange import Exchange
from broker.http import ops, problems
from broker.http.frontdoor import FrontDoor
from broker.http.metrics import Metrics
from broker.http.middleware import Guard
from broker.issuer.mint import AssertionIssuer
from broker.issuer.routes import IssuerMetadata
from broker.oidc.jwks import JwksCache
from broker.oidc.routes import ProgramsFrontDoor
from broker.oidc.signin import OidcSignIn, login_idps
from broker.oidc.verify import OidcVerifier
from broker.runtime import Runtime, server_secrets
from broker.saml.routes import SamlFrontDoor, saml_idps
from broker.store import open_store
from broker.terminal.routes import TerminalFrontDoor


def front_doors(config: Config) -> list[FrontDoor]:
    """Programs' OIDC API always; the browser pages when people can sign in (a SAML IdP, or an
    OIDC IdP with `login: true`), with each sign-in front door that is configured; the
    issuer's metadata when the broker signs its own assertions."""
    doors: list[FrontDoor] = [ProgramsFrontDoor()]
    if config.issuer is not None:
        doors.append(IssuerMetadata())
    if saml_idps(config) or login_idps(config):
        browser = BrowserFrontDoor()
        if saml_idps(config):
            saml = SamlFrontDoor(landing=browser)
            browser.offer(saml.sign_in_methods)
            doors.append(saml)
        if login_idps(config):
            oidc = OidcSignIn(landing=browser, config=config)
            browser.offer(oidc.sign_in_methods)
            doors.append(oidc)
        doors.append(browser)
        # `broker login`: the command line signs in through the browser's sign-in.
        doors.append(TerminalFrontDoor(browser))
    return doors


def create_app(config: Config, *, serving: bool = False, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    """`serving`: a long-lived server process (tunes the garbage collector after startup).
    `clock`: where the store, the issuer and the front doors that take it read the time."""
    doors = front_doors(config)
    # Keys are read now, so a missing or mismatched key stops startup before anything listens.
    issuer = (
        AssertionIssuer.from_config(config, clock=clock.now) if config.issuer is not None else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = httpx.AsyncClient(follow_redirects=False, timeout=5.0)
        metrics = Metrics()
        sts = StsClient(config.aws, observer=metrics)
        await sts.start()
        store = open_store(config.store, clock)
        audit = Audit(config.audit, metrics.decision)
        oidc_idps = {n: i for n, i in config.identity_providers.items() if isinstance(i, OidcIdp)}
        keys = {name: JwksCache(idp, http) for name, idp in oidc_idps.items()}
        verifier = OidcVerifier(oidc_idps, keys)
        exchange = Exchange(config, sts, issuer, observer=metrics)
        secrets = server_secrets(config.server)
        federation = Federation(config.aws)
        rt = Runtime(
            config, sts, store, audit, verifier, http, federation, metrics, exchange, secrets, clock
        )
        app.state.runtime = rt
        try:
            for door in doors:
                await door.start(rt)
            if serving:
                _settle_garbage_collector()
            yield
        finally:
            await sts.close()
            await federation.close()
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
    for router in (*(d.router() for d in doors), ops.router()):
        _mount(app, router)
    problems.install(app)
    paths = frozenset(r.path for r in app.router.routes if isinstance(r, Route))
    app.add_middleware(
        Guard,
        max_body=config.server.max_body_bytes,
        metrics=lambda: _metrics(app),
        routes=lambda: paths,
    )
    return app


def _metrics(app: FastAPI) -> Metrics | None:
    rt: Runtime | None = getattr(app.state, "runtime", None)
    return rt.metrics if rt is not None else None


def _mount(app: FastAPI, router: APIRouter) -> None:
    """Register a front door's routes on the app itself. include_router() keeps each router as
    a lazily matched branch, which bench/ measured at ~8% of an exchange's CPU."""
    for route in router.routes:
        if not isinstance(route, APIRoute):  # a plain Starlette endpoint (see broker.oidc.routes)
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


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: config from $BROKER_CONFIG."""
    from broker.config import load_config

    return create_app(load_config(), serving=True)


def _settle_garbage_collector() -> None:
    """A serving process: everything built at startup lives as long as the process, so move
    it out of the collector's sight, and collect young objects less often. Each request
    allocates a few hundred short-lived objects; the default threshold (700) runs a
    collection every couple of requests."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
