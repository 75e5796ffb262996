"""Programs' front door: an OIDC JWT in, temporary credentials out, in the shape SDKs read."""

from __future__ import annotations

import json
import shlex
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from broker.errors import InvalidParameter, MalformedRequest, MissingToken
from broker.exchange import assume, audited, choose, parse_duration, role_summary
from broker.identity import Credentials, Identity
from broker.mapping import map_roles
from broker.runtime import Runtime

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORMATS = ("json", "process", "env")


async def get_runtime(request: Request) -> Runtime:
    # async: a plain def dependency would hop to the thread pool on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer(request: Request, *, bare_allowed: bool = False) -> str:
    """The JWT from `Authorization: Bearer …`. The container-credentials contract sends the
    token file's content as the whole header value, so that route also takes it bare."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if bare_allowed and header and " " not in header:
        return header
    raise MissingToken(
        "Send the OIDC token as `Authorization: Bearer <jwt>`.",
        headers={"WWW-Authenticate": 'Bearer realm="broker"'},
    )


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def verified(rt: Runtime, token: str) -> Identity:
    return await rt.oidc.verify(token, now=time.time())


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


# The two credential endpoints are on every workload's hot path: plain Starlette endpoints,
# without FastAPI's per-request dependency solving (bench/ measured it). They read nothing
# but the request, so there is nothing for FastAPI to validate.
async def credentials(request: Request) -> Response:
    rt = runtime_of(request)
    async with audited(rt, "credentials", "oidc-api", client_address(request)) as trail:
        params = await request_options(request)
        fmt = response_format(params)
        duration = parse_duration(params.get("duration_seconds"))
        identity = await verified(rt, bearer(request))
        trail.identity(identity)
        grant = choose(map_roles(identity, rt.config), params.get("role"), rt.config.role_arns)
        trail.grant(grant)
        creds = await assume(rt, identity, grant, duration)
        trail.issued(creds)
    return render(creds, grant.arn, fmt)


async def container_credentials(request: Request) -> Response:
    rt = runtime_of(request)
    role = request.query_params.get("role")
    async with audited(rt, "container-credentials", "oidc-api", client_address(request)) as trail:
        identity = await verified(rt, bearer(request, bare_allowed=True))
        trail.identity(identity)
        grant = choose(map_roles(identity, rt.config), role, rt.config.role_arns)
        trail.grant(grant)
        creds = await assume(rt, identity, grant, None)
        trail.issued(creds)
    body = {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "Token": creds.session_token,
        "Expiration": creds.expiration_iso(),
        "RoleArn": grant.arn,
    }
    return JSONResponse(body, headers=NO_STORE)


router.add_route("/v1/credentials", credentials, methods=["POST"])
router.add_route("/v1/container-credentials", container_credentials, methods=["GET"])


@router.get("/v1/roles")
async def roles(request: Request, rt: RuntimeDep) -> Response:
    async with audited(rt, "roles", "oidc-api", client_address(request)) as trail:
        identity = await verified(rt, bearer(request))
        trail.identity(identity)
        decision = map_roles(identity, rt.config)
    body = {
        "idp": identity.idp,
        "subject": identity.subject,
        "roles": [role_summary(g) for g in decision.grants],
        "refused": [{"role": r.arn, "reason": r.reason} for r in decision.refused],
        "rules": [t.as_dict() for t in decision.trace if t.applies and t.matched],
    }
    return JSONResponse(body, headers=NO_STORE)


def render(creds: Credentials, role_arn: str, fmt: str) -> Response:
    """STS-shaped JSON, credential_process Version 1, or shell exports."""
    if fmt == "process":
        return JSONResponse(
            {
                "Version": 1,
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "SessionToken": creds.session_token,
                "Expiration": creds.expiration_iso(),
            },
            headers=NO_STORE,
        )
    if fmt == "env":
        lines = [
            f"export AWS_ACCESS_KEY_ID={shlex.quote(creds.access_key_id)}",
            f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds.secret_access_key)}",
            f"export AWS_SESSION_TOKEN={shlex.quote(creds.session_token)}",
            f"export AWS_CREDENTIAL_EXPIRATION={creds.expiration_iso()}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n", headers=NO_STORE)
    return JSONResponse(
        {
            "Credentials": {
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "SessionToken": creds.session_token,
                "Expiration": creds.expiration_iso(),
            },
            "AssumedRoleUser": {
                "Arn": creds.assumed_role_arn,
                "AssumedRoleId": creds.assumed_role_id,
            },
            "RoleArn": role_arn,
        },
        headers=NO_STORE,
    )


def response_format(params: dict[str, str]) -> str:
    fmt = params.get("format") or "json"
    if fmt not in _FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(_FORMATS)}.")
    return fmt


async def request_options(
    request: Request, keys: tuple[str, ...] = ("role", "duration_seconds", "format")
) -> dict[str, str]:
    """Options from the query string, overridden by a JSON or form body if one is sent."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body.strip():
        if ctype == "application/json":
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise MalformedRequest("The request body is not valid JSON.") from None
            if not isinstance(data, dict):
                raise MalformedRequest("The request body must be a JSON object.")
            params.update(data)
        elif ctype == "application/x-www-form-urlencoded":
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            raise MalformedRequest("Send options as JSON or form data, or in the query string.")
    out: dict[str, str] = {}
    for key in keys:
        value = params.get(key)
        if value is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidParameter(f"{key} must be a string.")
        out[key] = str(value)
    return out
