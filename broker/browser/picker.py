"""People's front door after sign-in: the sign-in chooser, the role picker, sign-out.

Protocol-neutral: a front door that verifies a person hands them over through `sign_in`, and
the picker sends people to sign in through the `SignInMethod`s the front doors offer. The
clicks that mint live in `console.py`; favourites and recent roles in `favourites.py` and
`memory.py`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from broker.audit import Trail
from broker.browser.confirm import confirm
from broker.browser.console import ConsoleRoutes
from broker.browser.favourites import FavouriteRoutes, shortcuts
from broker.browser.memory import RoleMemory
from broker.browser.pages import CONSOLE_REGIONS, account_groups
from broker.browser.session import BrowserSession, SessionManager
from broker.console_url.federation import SERVICES, destination_url
from broker.errors import NoRoleGranted
from broker.exchange import redemption_deadline
from broker.http.deps import RuntimeDep, request_path, runtime_of
from broker.http.frontdoor import SignInMethod
from broker.http.origin import from_another_site, origin_of
from broker.http.problems import sign_in_again
from broker.http.readers import read_form, safe_next
from broker.http.render import page
from broker.identity import Identity, RoleGrant
from broker.issuer.mint import broker_session_seconds
from broker.runtime import Runtime

SignInSource = Callable[[], Sequence[SignInMethod]]


class BrowserFrontDoor:
    def __init__(self) -> None:
        self._sources: list[SignInSource] = []
        self._sessions: SessionManager | None = None
        self._memory: RoleMemory | None = None
        self._single_role_direct = True
        self._origin = ""

    @property
    def sessions(self) -> SessionManager:
        if self._sessions is None:
            raise RuntimeError("the browser front door was not started")
        return self._sessions

    @property
    def memory(self) -> RoleMemory:
        if self._memory is None:
            raise RuntimeError("the browser front door was not started")
        return self._memory

    @property
    def origin(self) -> str:
        """This site's origin, as a browser sends it (for telling other sites' requests)."""
        return self._origin

    async def start(self, rt: Runtime) -> None:
        server = rt.config.server
        self._sessions = SessionManager(
            rt.store,
            rt.secrets,
            max_seconds=server.session_max_seconds,
            secure=server.base_url.startswith("https://"),
            issuer_seconds=lambda i, now: broker_session_seconds(rt.config, i, now),
        )
        self._memory = RoleMemory(rt.store, rt.secrets)
        self._single_role_direct = server.single_role_direct
        self._origin = origin_of(server.base_url)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/", self.picker, methods=["GET"])
        router.add_api_route("/signin", self.chooser, methods=["GET"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        ConsoleRoutes(self).add_to(router)
        FavouriteRoutes(self).add_to(router)
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
        groups = account_groups(rt.config, decision.grants)
        return page(
            "picker.html",
            title="Choose a role",
            groups=groups,
            shortcuts=shortcuts(groups, await self.memory.recall(session.identity)),
            csrf=session.csrf,
            subject=session.identity.subject,
            idp=session.identity.idp,
            expires=session.expires_at.strftime("%H:%M UTC"),
            reauth_at=_reauth_at(session, decision.grants, rt),
            destination=destination or "",
            region=region or "",
            regions=CONSOLE_REGIONS.get(rt.config.aws.partition, ()),
            services=sorted(SERVICES),
        )

    async def logout(self, request: Request) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        session = await self.session(request)
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

    async def session(self, request: Request) -> BrowserSession:
        """The signed-in session; without one, the refusal offers to sign in again."""
        with sign_in_again(self.login_url("/")):
            return await self.sessions.require(request, datetime.now(UTC))


def _reauth_at(session: BrowserSession, grants: Sequence[RoleGrant], rt: Runtime) -> str:
    """The real limit of a pass-through session: after this, clicks on roles reached with
    the IdP's own assertion go through the IdP again."""
    deadline = redemption_deadline(session.identity, rt.config)
    if deadline is None or not any(g.via == "idp" for g in grants):
        return ""
    return deadline.strftime("%H:%M:%S UTC")
