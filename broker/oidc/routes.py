"""Programs' front door: an OIDC JWT in, temporary credentials out, in the shape SDKs read."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from broker.exchange import role_summary
from broker.http.deps import bearer, client_address, runtime_of
from broker.http.readers import parse_duration, request_options, response_format
from broker.http.render import NO_STORE, render_container, render_credentials
from broker.runtime import Runtime

FRONT_DOOR = "oidc-api"


class ProgramsFrontDoor:
    """`/v1/credentials`, `/v1/container-credentials`, `/v1/roles`: always on."""

    def router(self) -> APIRouter:
        router = APIRouter()
        # The two credential endpoints are on every workload's hot path: plain Starlette
        # endpoints, without FastAPI's per-request dependency solving (bench/ measured it).
        router.add_route("/v1/credentials", credentials, methods=["POST"])
        router.add_route("/v1/container-credentials", container_credentials, methods=["GET"])
        router.add_route("/v1/roles", roles, methods=["GET"])
        return router

    async def start(self, rt: Runtime) -> None:
        return None


async def credentials(request: Request) -> Response:
    rt = runtime_of(request)
    async with rt.audit.decision("credentials", FRONT_DOOR, client_address(request)) as trail:
        params = await request_options(request)
        fmt = response_format(params)
        duration = parse_duration(params.get("duration_seconds"))
        identity = trail.identity(await rt.oidc.verify(bearer(request), now=time.time()))
        issued = await rt.exchange.issue(identity, params.get("role"), trail, duration=duration)
    return render_credentials(issued.credentials, issued.grant.arn, fmt)


async def container_credentials(request: Request) -> Response:
    rt = runtime_of(request)
    role = request.query_params.get("role")
    client = client_address(request)
    async with rt.audit.decision("container-credentials", FRONT_DOOR, client) as trail:
        token = bearer(request, bare_allowed=True)
        identity = trail.identity(await rt.oidc.verify(token, now=time.time()))
        # SDKs poll this endpoint with the same token file: credentials issued for the same
        # token, role and options may be served again (aws.container_cache).
        issued = await rt.exchange.issue(identity, role, trail, reuse=True)
    return render_container(issued.credentials, issued.grant.arn)


async def roles(request: Request) -> Response:
    rt = runtime_of(request)
    async with rt.audit.decision("roles", FRONT_DOOR, client_address(request)) as trail:
        identity = trail.identity(await rt.oidc.verify(bearer(request), now=time.time()))
        decision = rt.exchange.decide(identity)
    body = {
        "idp": identity.idp,
        "subject": identity.subject,
        "roles": [role_summary(g) for g in decision.grants],
        "refused": [{"role": r.arn, "reason": r.reason} for r in decision.refused],
        "rules": [t.as_dict() for t in decision.trace if t.applies and t.matched],
    }
    return JSONResponse(body, headers=NO_STORE)
