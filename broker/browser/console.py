"""The picker's clicks that mint: the AWS console (a form or a deep link) and command-line
credentials, each through the one issuance path and remembered as a recent role."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from broker.audit import Trail
from broker.browser.confirm import confirm
from broker.browser.memory import RoleMemory
from broker.browser.pages import cli_snippets
from broker.browser.reauth import cli_path, console_path, reauthenticate
from broker.browser.session import BrowserSession, SessionManager
from broker.console_url.federation import destination_url, session_duration
from broker.errors import InvalidParameter, ReauthenticationRequired
from broker.http.deps import RuntimeDep, client_address, request_path
from broker.http.frontdoor import SignInMethod
from broker.http.origin import from_another_site
from broker.http.readers import read_form
from broker.http.render import page
from broker.runtime import Runtime

FRONT_DOOR = "browser"
NO_REFERRER = {"Referrer-Policy": "no-referrer"}


class SignedIn(Protocol):
    """What these routes need of the browser front door: its sessions, memories and origin,
    how to sign someone in, and the signed-in session of a request."""

    @property
    def sessions(self) -> SessionManager: ...

    @property
    def memory(self) -> RoleMemory: ...

    @property
    def origin(self) -> str: ...

    def methods(self) -> list[SignInMethod]: ...

    def login_url(self, next_path: str) -> str: ...

    async def session(self, request: Request) -> BrowserSession: ...


class ConsoleRoutes:
    def __init__(self, door: SignedIn) -> None:
        self._door = door

    def add_to(self, router: APIRouter) -> None:
        router.add_api_route("/console", self.console_from_picker, methods=["POST"])
        router.add_api_route("/console", self.console_deep_link, methods=["GET"])
        router.add_api_route("/cli-credentials", self.cli_credentials, methods=["POST"])
        router.add_api_route("/cli-credentials", self.cli_again, methods=["GET"])

    async def console_from_picker(self, request: Request, rt: RuntimeDep) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        if from_another_site(request, self._door.origin):
            return _confirm_console(await self._door.session(request), form)
        role, destination, region = form.get("role"), form.get("destination"), form.get("region")
        try:
            async with rt.audit.decision("console", FRONT_DOOR, client_address(request)) as t:
                session = await self._checked_session(request, form, t)
                url = await self._open_console(rt, session, t, role, destination, region)
        except ReauthenticationRequired:
            return await self._again(request, rt, console_path(role, destination, region))
        return RedirectResponse(url, status_code=303, headers=NO_REFERRER)

    async def console_deep_link(
        self,
        request: Request,
        rt: RuntimeDep,
        role: str | None = None,
        destination: str | None = None,
        region: str | None = None,
    ) -> Response:
        """A bookmarkable deep link; through the sign-in first when there is no session."""
        destination_url(rt.config.aws.partition, destination, region)  # refuse before sign-in
        now = datetime.now(UTC)
        sessions = self._door.sessions
        session = await sessions.load(request, now)
        if session is None:
            return RedirectResponse(self._door.login_url(request_path(request)), status_code=303)
        if not role:
            grants = rt.exchange.decide(session.identity).grants
            if len(grants) != 1:
                query = {
                    k: v for k, v in {"destination": destination, "region": region}.items() if v
                }
                return RedirectResponse("/" + ("?" + urlencode(query) if query else ""), 303)
            role = grants[0].name
        if from_another_site(request, self._door.origin):
            # A bookmark or a link on our own pages opens the console at once; another site's
            # link does not, unless it is where this browser's own sign-in just went on to.
            landed = await sessions.land(session, request_path(request), now)
            if landed is None:
                fields = {"role": role, "destination": destination, "region": region}
                return _confirm_console(session, fields)
            session = landed
        try:
            async with rt.audit.decision("console", FRONT_DOOR, client_address(request)) as t:
                t.identity(session.identity)
                url = await self._open_console(rt, session, t, role, destination, region)
        except ReauthenticationRequired:
            return await self._again(request, rt, console_path(role, destination, region))
        return RedirectResponse(url, status_code=303, headers=NO_REFERRER)

    async def cli_credentials(self, request: Request, rt: RuntimeDep) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        if from_another_site(request, self._door.origin):
            return _confirm_cli(await self._door.session(request), form.get("role"))
        client = client_address(request)
        try:
            async with rt.audit.decision("cli-credentials", FRONT_DOOR, client) as trail:
                session = await self._checked_session(request, form, trail)
                issued = await rt.exchange.issue(session.identity, _role(form.get("role")), trail)
        except ReauthenticationRequired:
            return await self._again(request, rt, cli_path(form.get("role")))
        await self._door.memory.opened(session.identity, issued.grant.arn)
        snippets = cli_snippets(
            issued.credentials,
            issued.grant,
            base_url=rt.config.server.base_url,
            tokens=any(i.type == "oidc" for i in rt.config.identity_providers.values()),
        )
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/html" not in accept:
            return JSONResponse(snippets, headers=NO_REFERRER)
        title = f"Command-line credentials: {issued.grant.name}"
        context = {"title": title, "grant": issued.grant, **snippets}
        return page("cli.html", context, headers=NO_REFERRER)

    async def cli_again(self, request: Request, role: str | None = None) -> Response:
        """Where a command-line request comes back to after signing in again: one click
        (a form with the CSRF token) shows the credentials; a GET never mints them."""
        return _confirm_cli(await self._door.session(request), role)

    # -- the steps the routes share ---------------------------------------------------------

    async def _again(self, request: Request, rt: Runtime, next_path: str) -> Response:
        """The kept sign-in is past what AWS redeems: back through the IdP, then `next_path`."""
        session = await self._door.session(request)
        return reauthenticate(self._door.methods(), session.identity, next_path, rt.config)

    async def _checked_session(
        self, request: Request, form: dict[str, str], trail: Trail
    ) -> BrowserSession:
        session = await self._door.session(request)
        trail.identity(session.identity)
        session.check_csrf(form.get("csrf"))
        return session

    async def _open_console(
        self,
        rt: Runtime,
        session: BrowserSession,
        trail: Trail,
        role: str | None,
        destination: str | None,
        region: str | None,
    ) -> str:
        now = datetime.now(UTC)
        target = destination_url(rt.config.aws.partition, destination, region)
        issued = await rt.exchange.issue(session.identity, _role(role), trail)
        url = await rt.federation.signin_url(
            issued.credentials,
            issuer=rt.config.server.base_url,
            destination=target,
            duration=session_duration(session.identity, issued.grant, now),
        )
        await self._door.memory.opened(session.identity, issued.grant.arn)
        return url


def _confirm_console(session: BrowserSession, fields: Mapping[str, str | None]) -> Response:
    role = fields.get("role")
    where = fields.get("destination") or "the console home"
    return confirm(
        session,
        "/console",
        {k: fields.get(k) for k in ("role", "destination", "region")},
        title="Open the AWS console?",
        question=f"Open the AWS console as {role}, at {where}?",
        button="Open the console",
    )


def _confirm_cli(session: BrowserSession, role: str | None) -> Response:
    return confirm(
        session,
        "/cli-credentials",
        {"role": role},
        title="Command-line credentials?",
        question=f"Show command-line credentials for the role {role or '?'}?",
        button="Show credentials",
    )


def _role(role: str | None) -> str:
    """The form names a role; only the rules over the verified identity can grant it."""
    if not role:
        raise InvalidParameter("Choose a role.")
    return role
