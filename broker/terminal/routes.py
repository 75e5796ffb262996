"""The command line's front door: `broker login` signs a terminal in through the browser.

Two ways, both OAuth 2.0 for native apps with the broker as the authorization server:

- the loopback redirect (RFC 8252, with PKCE, RFC 7636): `GET /cli/authorize` asks the signed-in
  person to confirm, `POST /cli/authorize` sends a one-time code to the command line's listener
  on 127.0.0.1, and `POST /cli/token` trades it (with the PKCE verifier) for a session token;
- the device grant (RFC 8628) for a terminal with no browser on its machine: `POST /cli/device`,
  the person approves the user code at `/device`, the command line polls `POST /cli/token`.

People sign in the broker's usual way (SAML or OIDC, any MFA their IdP asks for): the browser
front door's sessions and sign-in are used as they are, and nothing from the IdP reaches the
command line. It gets an opaque broker session token, usable at `/cli/*` only (api.py).

Why not authlib's authorization-server grant classes: they are synchronous (query and save
callbacks) while the store is async Redis, and authlib has no Starlette/ASGI server
integration. The client side (broker/login/) uses authlib's PKCE helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from broker.browser.memory import RoleMemory
from broker.browser.session import BrowserSession, SessionManager
from broker.clock import SYSTEM_CLOCK, Clock
from broker.errors import AccessDenied, CsrfFailed, InvalidParameter, TooManyAttempts
from broker.exchange import redemption_deadline
from broker.http.deps import RuntimeDep, client_address, request_path
from broker.http.origin import from_another_site, origin_of
from broker.http.readers import read_form
from broker.http.render import NO_STORE, page
from broker.runtime import Runtime
from broker.terminal import api, checks
from broker.terminal.api import FRONT_DOOR
from broker.terminal.records import DEVICE_SECONDS, DeviceRequest, Records

_HEADERS = {"Referrer-Policy": "no-referrer", **NO_STORE}
#: RFC 8628 §5.1: wrong user codes a browser session may try before it must wait.
MAX_WRONG_CODES = 5


class BrowserSignIn(Protocol):
    """What this front door takes from the browser's: its sessions and the way to sign in."""

    @property
    def sessions(self) -> SessionManager: ...

    @property
    def memory(self) -> RoleMemory: ...

    def login_url(self, next_path: str) -> str: ...


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A `/cli/authorize` request, every parameter checked."""

    redirect_uri: str
    state: str
    challenge: str

    def fields(self) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": checks.CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }

    def answer(self, **params: str) -> RedirectResponse:
        """RFC 6749 §4.1.2: back to the command line's listener with the code (or error) and
        state; the redirect_uri was checked to be loopback before anything else."""
        query = urlencode({**params, "state": self.state})
        sep = "&" if "?" in self.redirect_uri else "?"
        return RedirectResponse(self.redirect_uri + sep + query, 303, headers=_HEADERS)


def authorize_request(params: dict[str, str]) -> AuthorizeRequest:
    """RFC 6749 §4.1.2.1: a bad client or redirect_uri gets an error page, never a redirect.
    Checked in that order, and all of it before a session is looked at."""
    checks.client_id(params.get("client_id"))
    redirect_uri = checks.loopback_redirect(params.get("redirect_uri"))
    if params.get("response_type") != "code":
        raise InvalidParameter("response_type must be code.")
    challenge = checks.s256_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    return AuthorizeRequest(redirect_uri, checks.state(params.get("state")), challenge)


class TerminalFrontDoor:
    def __init__(self, browser: BrowserSignIn) -> None:
        self._browser = browser
        self._records: Records | None = None
        self._origin = ""
        self._clock: Clock = SYSTEM_CLOCK

    @property
    def records(self) -> Records:
        if self._records is None:
            raise RuntimeError("the command-line front door was not started")
        return self._records

    async def start(self, rt: Runtime) -> None:
        self._records = Records(rt.store, rt.secrets)
        self._clock = rt.clock
        self._origin = origin_of(rt.config.server.base_url)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/cli/authorize", self.authorize_page, methods=["GET"])
        router.add_api_route("/cli/authorize", self.authorize, methods=["POST"])
        router.add_api_route("/device", self.device_page, methods=["GET"])
        router.add_api_route("/device", self.device_decision, methods=["POST"])
        api.add_routes(router, lambda: self.records, lambda: self._browser.memory)
        return router

    # -- loopback: confirm, then a code -----------------------------------------------------

    async def authorize_page(self, request: Request, rt: RuntimeDep) -> Response:
        """A GET only asks; it never issues a code (a link alone must not sign a terminal in)."""
        wanted = authorize_request(dict(request.query_params))
        session = await self._fresh_session(request, rt)
        if session is None:
            return self._sign_in(request)
        return page(
            "cli_authorize.html",
            {"title": "Sign in the command line?", "subject": session.identity.subject},
            idp=session.identity.idp,
            csrf=session.csrf,
            fields=wanted.fields(),
            port=urlsplit(wanted.redirect_uri).port,
            headers=_HEADERS,
        )

    async def authorize(self, request: Request, rt: RuntimeDep) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        wanted = authorize_request(form)
        if from_another_site(request, self._origin):
            raise CsrfFailed("Another site posted this form; start again with broker login.")
        session = await self._browser.sessions.require(request, self._clock.now())
        if self._stale(session, rt):  # the confirm page waited past what STS redeems
            return self._sign_in_to("/cli/authorize?" + urlencode(wanted.fields()))
        try:
            async with rt.audit.decision("cli-authorize", FRONT_DOOR, client_address(request)) as t:
                t.identity(session.identity)
                session.check_csrf(form.get("csrf"))
                if form.get("decision") != "allow":
                    raise AccessDenied("The command line's sign-in was denied in the browser.")
                code = await self.records.new_code(
                    session.identity,
                    session.expires_at,
                    challenge=wanted.challenge,
                    redirect_uri=wanted.redirect_uri,
                    client_id=checks.CLIENT_ID,
                    now=self._clock.now(),
                )
        except AccessDenied:
            return wanted.answer(error="access_denied")
        return wanted.answer(code=code)

    # -- device: enter the code, approve or deny ---------------------------------------------

    async def device_page(self, request: Request, rt: RuntimeDep) -> Response:
        session = await self._fresh_session(request, rt)
        if session is None:
            return self._sign_in(request)
        typed = request.query_params.get("user_code")
        if not typed:
            return _device_entry(session)
        found = await self._lookup(session, typed)
        if found is None:
            return _device_entry(session, typed=typed, wrong=True)
        return page(
            "device.html",
            title="Sign in the command line?",
            subject=session.identity.subject,
            idp=session.identity.idp,
            csrf=session.csrf,
            user_code=checks.show_user_code(found.user_code),
            requested_at=found.requested_at.strftime("%H:%M:%S UTC"),
            client=found.client or "unknown",
            headers=_HEADERS,
        )

    async def device_decision(self, request: Request, rt: RuntimeDep) -> Response:
        form = await read_form(request, what="the form", empty_ok=True)
        if from_another_site(request, self._origin):
            raise CsrfFailed("Another site posted this form; open the device page yourself.")
        session = await self._browser.sessions.require(request, self._clock.now())
        if self._stale(session, rt):
            return self._sign_in_to(
                "/device?" + urlencode({"user_code": form.get("user_code", "")})
            )
        allow = form.get("decision") == "allow"
        try:
            async with rt.audit.decision("cli-device", FRONT_DOOR, client_address(request)) as t:
                t.identity(session.identity)
                session.check_csrf(form.get("csrf"))
                found = await self._lookup(session, form.get("user_code"))
                if found is None:
                    raise InvalidParameter("That code is unknown or has expired.")
                identity = session.identity if allow else None
                await self.records.decide_device(
                    found, identity, session.expires_at, self._clock.now()
                )
                if not allow:
                    raise AccessDenied("The command line's sign-in was denied in the browser.")
        except AccessDenied:
            pass
        return page(
            "device_done.html",
            title="Command line signed in" if allow else "Sign-in denied",
            allowed=allow,
            headers=_HEADERS,
        )

    # -- steps the routes share ---------------------------------------------------------------

    async def _fresh_session(self, request: Request, rt: Runtime) -> BrowserSession | None:
        """The browser's session, or None when there is none or it is stale (`_stale`)."""
        session = await self._browser.sessions.load(request, self._clock.now())
        return None if session is None or self._stale(session, rt) else session

    def _stale(self, session: BrowserSession, rt: Runtime) -> bool:
        """The session's IdP assertion is past what STS redeems, and a role is reached with
        it: the terminal would get a session that cannot reach those roles, so the person
        signs in again first (issuer roles alone never make a session stale)."""
        deadline = redemption_deadline(session.identity, rt.config)
        if deadline is None or deadline > self._clock.now():
            return False
        return any(g.via == "idp" for g in rt.exchange.decide(session.identity).grants)

    def _sign_in(self, request: Request) -> Response:
        return self._sign_in_to(request_path(request))

    def _sign_in_to(self, path: str) -> Response:
        return RedirectResponse(self._browser.login_url(path), status_code=303)

    async def _lookup(self, session: BrowserSession, typed: str | None) -> DeviceRequest | None:
        """RFC 8628 §5.1: a browser session may get a user code wrong a few times, then must
        wait until the codes it could be guessing have expired."""
        who = checks.digest(session.id)
        if await self.records.wrong_guesses(who) >= MAX_WRONG_CODES:
            raise TooManyAttempts(
                "Too many wrong codes: wait ten minutes, then start broker login again.",
                headers={"Retry-After": str(DEVICE_SECONDS)},
            )
        code = checks.user_code(typed)
        found = None if code is None else await self.records.device_request(code, self._clock.now())
        if found is None:
            await self.records.guessed_wrong(who)
        return found


def _device_entry(session: BrowserSession, *, typed: str = "", wrong: bool = False) -> Response:
    return page(
        "device.html",
        title="Sign in the command line",
        subject=session.identity.subject,
        idp=session.identity.idp,
        typed=typed,
        wrong=wrong,
        status=400 if wrong else 200,
        headers=_HEADERS,
    )
