"""People's front door after sign-in: the role picker, console sign-in, command-line credentials.

Protocol-neutral: a front door that verifies a person hands them over through `sign_in`, and
the picker sends people to sign in through the `SignInMethod`s the front doors offer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from broker.audit import Trail
from broker.browser.confirm import confirm
from broker.browser.pages import CONSOLE_REGIONS, account_groups, cli_snippets
from broker.browser.reauth import cli_path, console_path, reauthenticate
from broker.browser.session import BrowserSession, SessionManager
from broker.console_url.federation import SERVICES, destination_url, session_duration, signin_url
from broker.errors import InvalidParameter, NoRoleGranted, ReauthenticationRequired
from broker.exchange import redemption_deadline
from broker.http.deps import RuntimeDep, client_address, request_path, runtime_of
from broker.http.frontdoor import SignInMethod
from broker.http.origin import from_another_site, origin_of
from broker.http.problems import sign_in_again
from broker.http.readers import read_form, safe_next
from broker.http.render import page
from broker.identity import Identity, RoleGrant
from broker.issuer.mint import broker_session_seconds
from broker.runtime import Runtime

FRONT_DOOR = "browser"
_NO_REFERRER = {"Referrer-Policy": "no-referrer"}
SignInSource = Callable[[], Sequence[SignInMethod]]


class BrowserFrontDoor:
    def __init__(self) -> None:
        self._sources: list[SignInSource] = []
        self._sessions: SessionManager | None = None
        self._single_role_direct = True
        self._origin = ""

    @property
    def sessions(self) -> SessionManager:
        if self._sessions is None:
            raise RuntimeError("the browser front door was not started")
        return self._sessions

    async def start(self, rt: Runtime) -> None:
        server = rt.config.server
        self._sessions = SessionManager(
            rt.store,
            rt.secrets,
            max_seconds=server.session_max_seconds,
            secure=server.base_url.startswith("https://"),
            issuer_seconds=lambda i, now: broker_session_seconds(rt.config, i, now),
        )
        self._single_role_direct = server.single_role_direct
        self._origin = origin_of(server.base_url)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/", self.picker, methods=["GET"])
        router.add_api_route("/signin", self.chooser, methods=["GET"])
        router.add_api_route("/console", self.console_from_picker, methods=["POST"])
        router.add_api_route("/console", self.console_deep_link, methods=["GET"])
        router.add_api_route("/cli-credentials", self.cli_credentials, methods=["POST"])
        router.add_api_route("/cli-credentials", self.cli_again, methods=["GET"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        return router

    # -- hand-offs ------------------------------------------------------------------------

    def offer(self, source: SignInSource) -> None:
        """A front door that can start sign-ins lists its methods here (read per request:
        IdP metadata loads at startup)."""
        self._sources.append(source)

    def methods(self) -> list[SignInMethod]:
        return [m for source in self._sources for m in source()]

    def login_url(self, next_path: str) -> str:
        """Straight to the only way to sign in, else the chooser."""
        methods = self.methods()
        if len(methods) == 1:
            return methods[0].start_url(next_path)
        return "/signin?" + urlencode({"next": next_path})

    async def sign_in(
        self,
        request: Request,
        identity: Identity,
        target: str,
        trail: Trail,
        *,
        ask_first: bool = False,
    ) -> Response:
        """A front door verified this person: open a browser session and go on to `target`
        (the console directly when exactly one role is granted and nothing else was asked)."""
        grants = runtime_of(request).exchange.decide(identity).grants
        if not grants:
            raise NoRoleGranted("You have no AWS roles; ask your administrator for access.")
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        if (
            parts.path == "/"
            and set(query) <= {"destination", "region"}
            and len(grants) == 1
            and self._single_role_direct
        ):
            target = "/console?" + urlencode({"role": grants[0].name, **query})
            ask_first = False
        landing = None if ask_first else target
        cookie, session = await self.sessions.create(identity, datetime.now(UTC), landing=landing)
        response = RedirectResponse(target, status_code=303)
        self.sessions.set_cookie(response, cookie, session)
        return response

    # -- pages ----------------------------------------------------------------------------

    async def chooser(
        self, next_path: Annotated[str | None, Query(alias="next")] = None
    ) -> Response:
        target = safe_next(next_path)
        links = [(m.label, m.start_url(target)) for m in self.methods()]
        return page("signin.html", title="Sign in", idps=links)

    async def picker(
        self,
        request: Request,
        rt: RuntimeDep,
        destination: str | None = None,
        region: str | None = None,
    ) -> Response:
        session = await self.sessions.load(request, datetime.now(UTC))
        if session is None:
            return RedirectResponse(self.login_url(request_path(request)), status_code=303)
        if destination or region:
            destination_url(rt.config.aws.partition, destination, region)  # refuse bad links now
        decision = rt.exchange.decide(session.identity)
        return page(
            "picker.html",
            title="Choose a role",
            groups=account_groups(rt.config, decision.grants),
            csrf=session.csrf,
            subject=session.identity.subject,
            idp=session.identity.idp,
            expires=session.expires_at.strftime("%H:%M UTC"),
            reauth_at=_reauth_at(session, decision.grants, rt),
            last_role=session.last_role,
            destination=destination or "",
            region=region or "",
            regions=CONSOLE_REGIONS.get(rt.config.aws.partition, ()),
            services=sorted(SERVICES),
        )

    async def console_from_picker(self, request: Request, rt: RuntimeDep) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        if from_another_site(request, self._origin):
            return _confirm_console(await self._session(request), form)
        role, destination, region = form.get("role"), form.get("destination"), form.get("region")
        try:
            async with rt.audit.decision("console", FRONT_DOOR, client_address(request)) as t:
                session = await self._checked_session(request, form, t)
                url = await self._open_console(rt, session, t, role, destination, region)
        except ReauthenticationRequired:
            return await self._again(request, rt, console_path(role, destination, region))
        return RedirectResponse(url, status_code=303, headers=_NO_REFERRER)

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
        session = await self.sessions.load(request, now)
        if session is None:
            return RedirectResponse(self.login_url(request_path(request)), status_code=303)
        if not role:
            grants = rt.exchange.decide(session.identity).grants
            if len(grants) != 1:
                query = {
                    k: v for k, v in {"destination": destination, "region": region}.items() if v
                }
                return RedirectResponse("/" + ("?" + urlencode(query) if query else ""), 303)
            role = grants[0].name
        if from_another_site(request, self._origin):
            # A bookmark or a link on our own pages opens the console at once; another site's
            # link does not, unless it is where this browser's own sign-in just went on to.
            landed = await self.sessions.land(session, request_path(request), now)
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
        return RedirectResponse(url, status_code=303, headers=_NO_REFERRER)

    async def cli_credentials(self, request: Request, rt: RuntimeDep) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        if from_another_site(request, self._origin):
            return confirm(
                await self._session(request),
                "/cli-credentials",
                {"role": form.get("role")},
                title="Command-line credentials?",
                question=f"Show command-line credentials for the role {form.get('role') or '?'}?",
                button="Show credentials",
            )
        client = client_address(request)
        try:
            async with rt.audit.decision("cli-credentials", FRONT_DOOR, client) as trail:
                session = await self._checked_session(request, form, trail)
                issued = await rt.exchange.issue(session.identity, _role(form.get("role")), trail)
        except ReauthenticationRequired:
            return await self._again(request, rt, cli_path(form.get("role")))
        await self.sessions.remember_role(session, issued.grant.name, datetime.now(UTC))
        snippets = cli_snippets(
            issued.credentials,
            issued.grant,
            base_url=rt.config.server.base_url,
            tokens=any(i.type == "oidc" for i in rt.config.identity_providers.values()),
        )
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/html" not in accept:
            return JSONResponse(snippets, headers=_NO_REFERRER)
        title = f"Command-line credentials: {issued.grant.name}"
        context = {"title": title, "grant": issued.grant, **snippets}
        return page("cli.html", context, headers=_NO_REFERRER)

    async def logout(self, request: Request) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        session = await self._session(request)
        if from_another_site(request, self._origin):
            return confirm(
                session,
                "/logout",
                {},
                title="Sign out?",
                question="Sign out of the broker?",
                button="Sign out",
            )
        session.check_csrf(form.get("csrf"))
        await self.sessions.destroy(session)
        response = page("signed_out.html", title="Signed out")
        self.sessions.clear_cookie(response)
        return response

    async def cli_again(self, request: Request, role: str | None = None) -> Response:
        """Where a command-line request comes back to after signing in again: one click
        (a form with the CSRF token) shows the credentials; a GET never mints them."""
        session = await self._session(request)
        return confirm(
            session,
            "/cli-credentials",
            {"role": role},
            title="Command-line credentials?",
            question=f"Show command-line credentials for the role {role or '?'}?",
            button="Show credentials",
        )

    # -- the steps the routes share ---------------------------------------------------------

    async def _again(self, request: Request, rt: Runtime, next_path: str) -> Response:
        """The kept sign-in is past what AWS redeems: back through the IdP, then `next_path`."""
        session = await self._session(request)
        return reauthenticate(self.methods(), session.identity, next_path, rt.config)

    async def _session(self, request: Request) -> BrowserSession:
        """The signed-in session; without one, the refusal offers to sign in again."""
        with sign_in_again(self.login_url("/")):
            return await self.sessions.require(request, datetime.now(UTC))

    async def _checked_session(
        self, request: Request, form: dict[str, str], trail: Trail
    ) -> BrowserSession:
        session = await self._session(request)
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
        url = await signin_url(
            rt.http,
            rt.config.aws,
            issued.credentials,
            issuer=rt.config.server.base_url,
            destination=target,
            duration=session_duration(session.identity, issued.grant, now),
        )
        await self.sessions.remember_role(session, issued.grant.name, now)
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


def _reauth_at(session: BrowserSession, grants: Sequence[RoleGrant], rt: Runtime) -> str:
    """The real limit of a pass-through session: after this, clicks on roles reached with
    the IdP's own assertion go through the IdP again."""
    deadline = redemption_deadline(session.identity, rt.config)
    if deadline is None or not any(g.via == "idp" for g in grants):
        return ""
    return deadline.strftime("%H:%M:%S UTC")


def _role(role: str | None) -> str:
    """The form names a role; only the rules over the verified identity can grant it."""
    if not role:
        raise InvalidParameter("Choose a role.")
    return role
