"""SAML front door: SP metadata, SP-initiated login, the ACS (browser) and the CLI credentials API."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broker.api import RuntimeDep, client_address, render, request_options, response_format
from broker.errors import InvalidParameter, MalformedRequest, NoRoleGranted, NotFound
from broker.exchange import assume, audited, choose, parse_duration
from broker.mapping import map_roles
from broker.problems import templates
from broker.runtime import Runtime
from broker.saml.authn import start_login
from broker.saml.metadata import sp_metadata
from broker.saml.settings import SamlIdpRuntime, SpEndpoints
from broker.saml.verify import SamlVerifier
from broker.session import EXTRAS_KEY, SessionManager

EXTRAS_SAML = "saml"
RELAY_KEY = "relay:{}"
RELAY_TTL_SECONDS = 600


@dataclass(frozen=True, slots=True)
class SamlFrontDoor:
    """What the startup hook resolved once: our SP endpoints, the IdPs and their verifier."""

    sp: SpEndpoints
    idps: Mapping[str, SamlIdpRuntime]
    verifier: SamlVerifier
    # One granted role and no deep link: skip the picker and open the console.
    single_role_direct: bool = True


def saml_state(rt: Runtime) -> SamlFrontDoor:
    state: SamlFrontDoor = rt.extras[EXTRAS_SAML]
    return state


def sessions(rt: Runtime) -> SessionManager:
    manager: SessionManager = rt.extras[EXTRAS_KEY]
    return manager


def safe_next(value: str | None) -> str:
    """RelayState/next may only name a path on the broker: no scheme, no host, no `//`."""
    if not value:
        return "/"
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or c == "\x7f" for c in value)
        or len(value) > 2048
    ):
        raise InvalidParameter("next must be a path on this site.")
    return value


def login_url(next_path: str, idp: str | None = None) -> str:
    params = {"next": next_path} | ({"idp": idp} if idp else {})
    return "/saml/login?" + urlencode(params)


router = APIRouter()


@router.get("/saml/metadata")
async def metadata(rt: RuntimeDep) -> Response:
    return Response(
        sp_metadata(saml_state(rt).sp),
        media_type="application/samlmetadata+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/saml/login")
async def login(
    rt: RuntimeDep,
    idp: str | None = None,
    next_path: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    """SP-initiated sign-in (HTTP-Redirect binding). RelayState is a random key for `next`,
    kept server-side; the URL itself never travels through the IdP."""
    state = saml_state(rt)
    target = safe_next(next_path)
    usable = {n: i for n, i in state.idps.items() if i.sso_url}
    if idp is None:
        if len(usable) != 1:
            links = [(n, login_url(target, n)) for n in sorted(usable)]
            page = templates.get_template("signin.html").render(title="Sign in", idps=links)
            return HTMLResponse(page)
        idp = next(iter(usable))
    chosen = state.idps.get(idp)
    if chosen is None:
        raise NotFound("There is no identity provider by that name.")
    key = secrets.token_urlsafe(24)
    await rt.store.put(RELAY_KEY.format(key), target.encode(), RELAY_TTL_SECONDS)
    url = await start_login(chosen, state.sp, rt.store, relay_state=key, now=datetime.now(UTC))
    return RedirectResponse(url, status_code=303)


@router.post("/saml/acs")
async def acs(request: Request, rt: RuntimeDep) -> Response:
    """HTTP-POST binding, IdP- or SP-initiated: verify, open a browser session, go on."""
    state, manager = saml_state(rt), sessions(rt)
    now = datetime.now(UTC)
    async with audited(rt, "saml-signin", "saml-browser", client_address(request)) as trail:
        form = await _form(request)
        saml_response = form.get("SAMLResponse")
        if not saml_response:
            raise MalformedRequest("The sign-in did not include a SAMLResponse.")
        identity = await state.verifier.verify(saml_response, now=now)
        trail.identity(identity)
        decision = map_roles(identity, rt.config)
        if not decision.grants:
            raise NoRoleGranted("You have no AWS roles; ask your administrator for access.")
        cookie, session = await manager.create(identity, now)
    target = "/"
    relay = form.get("RelayState")
    if relay:
        stored = await rt.store.take(RELAY_KEY.format(relay))
        target = stored.decode() if stored is not None else "/"
    if target == "/" and len(decision.grants) == 1 and state.single_role_direct:
        target = "/console?" + urlencode({"role": decision.grants[0].name})
    response = RedirectResponse(target, status_code=303)
    manager.set_cookie(response, cookie, session)
    return response


@router.post("/v1/saml/credentials")
async def credentials(request: Request, rt: RuntimeDep) -> Response:
    """A CLI tool trades a base64 SAMLResponse (single use) for credentials."""
    state = saml_state(rt)
    async with audited(rt, "credentials", "saml-api", client_address(request)) as trail:
        params = await request_options(
            request, ("SAMLResponse", "role", "duration_seconds", "format")
        )
        fmt = response_format(params)
        duration = parse_duration(params.get("duration_seconds"))
        saml_response = params.get("SAMLResponse")
        if not saml_response:
            raise MalformedRequest("Send the base64 SAMLResponse in the SAMLResponse field.")
        identity = await state.verifier.verify(saml_response, now=datetime.now(UTC))
        trail.identity(identity)
        grant = choose(map_roles(identity, rt.config), params.get("role"), rt.config.role_arns)
        trail.grant(grant)
        creds = await assume(rt, identity, grant, duration)
        trail.issued(creds)
    return render(creds, grant.arn, fmt)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise MalformedRequest("Send the SAMLResponse as an HTML form post.")
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}
