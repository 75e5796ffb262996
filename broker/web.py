"""People's front door after sign-in: the role picker, console sign-in, command-line credentials."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from broker.api import RuntimeDep, client_address
from broker.console_url.federation import (
    SERVICES,
    destination_url,
    session_duration,
    signin_url,
)
from broker.errors import InvalidParameter, MalformedRequest
from broker.exchange import Trail, assume, audited, choose
from broker.identity import Credentials, RoleGrant
from broker.mapping import map_roles
from broker.problems import templates
from broker.runtime import Runtime
from broker.saml.routes import login_url, sessions
from broker.session import BrowserSession

router = APIRouter()


@dataclass
class AccountGroup:
    account_id: str
    name: str
    roles: list[dict[str, str]] = field(default_factory=list)


def _groups(rt: Runtime, grants: tuple[RoleGrant, ...]) -> list[AccountGroup]:
    """Accounts by their configured names (the ID alongside, never alone unless unnamed)."""
    by_id: dict[str, AccountGroup] = {}
    for g in grants:
        group = by_id.setdefault(
            g.account_id, AccountGroup(g.account_id, g.account_name or f"Account {g.account_id}")
        )
        role = rt.config.roles.get(g.name)
        description = role.description if role is not None and role.arn == g.arn else None
        group.roles.append({"name": g.name, "arn": g.arn, "description": description or ""})
    return sorted(by_id.values(), key=lambda a: (a.name.lower(), a.account_id))


@router.get("/")
async def picker(
    request: Request, rt: RuntimeDep, destination: str | None = None, region: str | None = None
) -> Response:
    now = datetime.now(UTC)
    session = await sessions(rt).load(request, now)
    if session is None:
        return RedirectResponse(login_url(_path(request)), status_code=303)
    if destination or region:
        destination_url(rt.config.aws.partition, destination, region)  # refuse bad deep links now
    decision = map_roles(session.identity, rt.config)
    page = templates.get_template("picker.html").render(
        title="Choose a role",
        groups=_groups(rt, decision.grants),
        csrf=session.csrf,
        subject=session.identity.subject,
        idp=session.identity.idp,
        expires=session.expires_at.strftime("%H:%M UTC"),
        last_role=session.last_role,
        destination=destination or "",
        region=region or "",
        services=sorted(SERVICES),
    )
    return HTMLResponse(page)


@router.post("/console")
async def console_from_picker(request: Request, rt: RuntimeDep) -> Response:
    form = await _form(request)
    async with audited(rt, "console", "saml-browser", client_address(request)) as trail:
        session = await _checked_session(rt, request, form, trail)
        url = await _open_console(
            rt, session, trail, form.get("role"), form.get("destination"), form.get("region")
        )
    return RedirectResponse(url, status_code=303, headers={"Referrer-Policy": "no-referrer"})


@router.get("/console")
async def console_deep_link(
    request: Request,
    rt: RuntimeDep,
    role: str | None = None,
    destination: str | None = None,
    region: str | None = None,
) -> Response:
    """A bookmarkable deep link; through the sign-in first when there is no session."""
    now = datetime.now(UTC)
    destination_url(rt.config.aws.partition, destination, region)  # refuse before any sign-in
    session = await sessions(rt).load(request, now)
    if session is None:
        return RedirectResponse(login_url(_path(request)), status_code=303)
    if not role:
        grants = map_roles(session.identity, rt.config).grants
        if len(grants) != 1:
            query = {k: v for k, v in {"destination": destination, "region": region}.items() if v}
            return RedirectResponse("/" + ("?" + urlencode(query) if query else ""), 303)
        role = grants[0].name
    async with audited(rt, "console", "saml-browser", client_address(request)) as trail:
        trail.identity(session.identity)
        url = await _open_console(rt, session, trail, role, destination, region)
    return RedirectResponse(url, status_code=303, headers={"Referrer-Policy": "no-referrer"})


@router.post("/cli-credentials")
async def cli_credentials(request: Request, rt: RuntimeDep) -> Response:
    form = await _form(request)
    async with audited(rt, "cli-credentials", "saml-browser", client_address(request)) as trail:
        session = await _checked_session(rt, request, form, trail)
        grant = _grant(rt, session, form.get("role"), trail)
        creds = await assume(rt, session.identity, grant, None)
        trail.issued(creds)
    await sessions(rt).remember_role(session, grant.name, datetime.now(UTC))
    snippets = _snippets(creds, grant)
    headers = {"Referrer-Policy": "no-referrer"}
    if "application/json" in request.headers.get("accept", "") and not _wants_html(request):
        return JSONResponse(snippets, headers=headers)
    page = templates.get_template("cli.html").render(
        title=f"Command-line credentials: {grant.name}", grant=grant, **snippets
    )
    return HTMLResponse(page, headers=headers)


@router.post("/logout")
async def logout(request: Request, rt: RuntimeDep) -> Response:
    form = await _form(request)
    manager = sessions(rt)
    session = await manager.require(request, datetime.now(UTC))
    session.check_csrf(form.get("csrf"))
    await manager.destroy(session)
    page = templates.get_template("signed_out.html").render(title="Signed out")
    response = HTMLResponse(page)
    manager.clear_cookie(response)
    return response


async def _checked_session(
    rt: Runtime, request: Request, form: dict[str, str], trail: Trail
) -> BrowserSession:
    session = await sessions(rt).require(request, datetime.now(UTC))
    trail.identity(session.identity)
    session.check_csrf(form.get("csrf"))
    return session


def _grant(rt: Runtime, session: BrowserSession, role: str | None, trail: Trail) -> RoleGrant:
    """The form names a role; only map_roles over the verified identity can grant it."""
    if not role:
        raise InvalidParameter("Choose a role.")
    grant = choose(map_roles(session.identity, rt.config), role, rt.config.role_arns)
    trail.grant(grant)
    return grant


async def _open_console(
    rt: Runtime,
    session: BrowserSession,
    trail: Trail,
    role: str | None,
    destination: str | None,
    region: str | None,
) -> str:
    now = datetime.now(UTC)
    grant = _grant(rt, session, role, trail)
    target = destination_url(rt.config.aws.partition, destination, region)
    creds = await assume(rt, session.identity, grant, None)
    trail.issued(creds)
    url = await signin_url(
        rt.http,
        rt.config.aws,
        creds,
        issuer=rt.config.server.base_url,
        destination=target,
        duration=session_duration(session.identity, grant, now),
    )
    await sessions(rt).remember_role(session, grant.name, now)
    return url


def _snippets(creds: Credentials, grant: RoleGrant) -> dict[str, str]:
    process = {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration_iso(),
    }
    profile = grant.name
    env = "\n".join(
        [
            f"export AWS_ACCESS_KEY_ID={shlex.quote(creds.access_key_id)}",
            f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds.secret_access_key)}",
            f"export AWS_SESSION_TOKEN={shlex.quote(creds.session_token)}",
            f"export AWS_CREDENTIAL_EXPIRATION={creds.expiration_iso()}",
        ]
    )
    process_file = f"~/.aws/broker-{profile}.json"
    return {
        "role_arn": grant.arn,
        "expiration": creds.expiration_iso(),
        "env": env + "\n",
        "credential_process_json": json.dumps(process, indent=2) + "\n",
        "credential_process_config": (
            f"[profile {profile}]\ncredential_process = cat {process_file}\n"
        ),
        "credential_process_file": process_file,
    }


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not ctype:
        return {}  # an empty POST: nothing to read, and the CSRF check will refuse it
    if ctype != "application/x-www-form-urlencoded":
        raise MalformedRequest("Send the form as application/x-www-form-urlencoded.")
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _path(request: Request) -> str:
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")
