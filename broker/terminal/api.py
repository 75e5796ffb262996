"""The command line's API: the token endpoint (codes and device codes in, a broker session token
out) and what that token is good for: roles, credentials, console URLs, logout.

Every issuance goes through the one path (`Exchange.issue`) inside one audit decision, like the
browser's; the token is only a handle on the identity the browser verified."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from broker.audit import Trail
from broker.browser.memory import RoleMemory
from broker.console_url.federation import destination_url, session_duration
from broker.errors import (
    InvalidClient,
    InvalidRequest,
    MissingToken,
    OAuthError,
    ReauthenticationRequired,
    UnsupportedGrantType,
)
from broker.exchange import role_summary
from broker.http.deps import client_address, runtime_of
from broker.http.readers import parse_duration, request_options
from broker.http.render import NO_STORE, process_json
from broker.runtime import Runtime
from broker.terminal import checks
from broker.terminal.records import DEVICE_INTERVAL, DEVICE_SECONDS, CliSession, Records

FRONT_DOOR = "terminal"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_FORM = "application/x-www-form-urlencoded"
_TOKEN_FIELDS = frozenset(
    {"grant_type", "code", "code_verifier", "redirect_uri", "client_id", "device_code"}
)


def add_routes(
    router: APIRouter, records: Callable[[], Records], memory: Callable[[], RoleMemory]
) -> None:
    api = TerminalApi(records, memory)
    router.add_api_route("/cli/token", api.token, methods=["POST"])
    router.add_api_route("/cli/device", api.device, methods=["POST"])
    router.add_api_route("/cli/roles", api.roles, methods=["GET"])
    router.add_api_route("/cli/credentials", api.credentials, methods=["POST"])
    router.add_api_route("/cli/console", api.console, methods=["POST"])
    router.add_api_route("/cli/logout", api.logout, methods=["POST"])


def oauth_error(exc: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2: `error` and `error_description`, status 400 (401 for the client)."""
    body: dict[str, Any] = {"error": exc.code, "error_description": exc.detail}
    body.update({k: v for k, v in exc.extra.items() if k == "interval"})
    if exc.error_id:
        body["error_id"] = exc.error_id
    status = 401 if isinstance(exc, InvalidClient) else 400
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **exc.headers})


async def token_form(request: Request) -> dict[str, str]:
    """RFC 6749 §3.2: form-encoded, each parameter at most once; anything else is
    invalid_request, never a 500."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != _FORM:
        raise InvalidRequest("Send the token request form-encoded (RFC 6749 §4.1.3).")
    try:
        form = await request.form()
    except (HTTPException, MultiPartException, UnicodeDecodeError, ValueError):
        raise InvalidRequest("The form could not be read.") from None
    items = form.multi_items()
    out: dict[str, str] = {}
    for key, value in items:
        if key not in _TOKEN_FIELDS:
            continue  # RFC 6749 §3.2: unrecognized parameters are ignored
        if key in out or not isinstance(value, str):
            raise InvalidRequest(f"{key} must be sent once, as text.")
        out[key] = value
    return out


class TerminalApi:
    def __init__(self, records: Callable[[], Records], memory: Callable[[], RoleMemory]) -> None:
        self._records = records
        # The picker's Recent list counts roles used from the terminal too.
        self._memory = memory

    # -- the token endpoint --------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        rt = runtime_of(request)
        now = rt.clock.now()
        records = self._records()
        try:
            async with rt.audit.decision("cli-token", FRONT_DOOR, client_address(request)) as t:
                form = await token_form(request)
                grant_type = form.get("grant_type")
                if not grant_type:
                    raise InvalidRequest("grant_type is required.")
                if form.get("client_id") != checks.CLIENT_ID:
                    raise InvalidClient(f"client_id must be {checks.CLIENT_ID!r}.")
                if grant_type == "authorization_code":
                    code, verifier, redirect_uri = (
                        _required(form, "code"),
                        _required(form, "code_verifier"),
                        _required(form, "redirect_uri"),
                    )
                    token, session = await records.redeem_code(
                        code,
                        verifier=verifier,
                        redirect_uri=redirect_uri,
                        client_id=checks.CLIENT_ID,
                        now=now,
                    )
                elif grant_type == DEVICE_GRANT:
                    token, session = await records.poll_device(_required(form, "device_code"), now)
                else:
                    raise UnsupportedGrantType(
                        "grant_type must be authorization_code or the device code grant."
                    )
                t.identity(session.identity)
        except OAuthError as exc:
            return oauth_error(exc)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": max(0, int((session.expires_at - now).total_seconds())),
            "subject": session.identity.subject,
            "idp": session.identity.idp,
        }
        return JSONResponse(body, headers=NO_STORE)

    async def device(self, request: Request) -> Response:
        """RFC 8628 §3.1-3.2: a device code for the command line, a user code for a person."""
        try:
            form = await token_form(request)
            if form.get("client_id") != checks.CLIENT_ID:
                raise InvalidClient(f"client_id must be {checks.CLIENT_ID!r}.")
        except OAuthError as exc:
            return oauth_error(exc)
        rt = runtime_of(request)
        device_code, user_code = await self._records().new_device(
            client_address(request), rt.clock.now()
        )
        shown = checks.show_user_code(user_code)
        base = rt.config.server.base_url.rstrip("/")
        body = {
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": f"{base}/device",
            "verification_uri_complete": f"{base}/device?user_code={shown}",
            "expires_in": DEVICE_SECONDS,
            "interval": DEVICE_INTERVAL,
        }
        return JSONResponse(body, headers=NO_STORE)

    # -- what a session token is good for --------------------------------------------------------

    async def roles(self, request: Request) -> Response:
        rt = runtime_of(request)
        async with rt.audit.decision("cli-roles", FRONT_DOOR, client_address(request)) as t:
            session = await self._session(request, t)
            grants = rt.exchange.decide(session.identity).grants
        body = {
            "subject": session.identity.subject,
            "idp": session.identity.idp,
            "expires_at": session.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "roles": [{k: v for k, v in role_summary(g).items() if k != "rule"} for g in grants],
        }
        return JSONResponse(body, headers=NO_STORE)

    async def credentials(self, request: Request) -> Response:
        rt = runtime_of(request)
        with _login_again(rt):
            async with rt.audit.decision(
                "cli-credentials", FRONT_DOOR, client_address(request)
            ) as t:
                session = await self._session(request, t)
                params = await request_options(request, ("role", "duration_seconds"))
                duration = parse_duration(params.get("duration_seconds"))
                issued = await rt.exchange.issue(
                    session.identity, params.get("role"), t, duration=duration
                )
        await self._memory().opened(session.identity, issued.grant.arn)
        return JSONResponse(process_json(issued.credentials), headers=NO_STORE)

    async def console(self, request: Request) -> Response:
        rt = runtime_of(request)
        with _login_again(rt):
            async with rt.audit.decision("console", FRONT_DOOR, client_address(request)) as t:
                session = await self._session(request, t)
                params = await request_options(request, ("role", "destination", "region"))
                target = destination_url(
                    rt.config.aws.partition, params.get("destination"), params.get("region")
                )
                issued = await rt.exchange.issue(session.identity, params.get("role"), t)
                url = await rt.federation.signin_url(
                    issued.credentials,
                    issuer=rt.config.server.base_url,
                    destination=target,
                    duration=session_duration(session.identity, issued.grant, rt.clock.now()),
                )
        await self._memory().opened(session.identity, issued.grant.arn)
        return JSONResponse({"url": url}, headers={"Referrer-Policy": "no-referrer", **NO_STORE})

    async def logout(self, request: Request) -> Response:
        rt = runtime_of(request)
        async with rt.audit.decision("cli-logout", FRONT_DOOR, client_address(request)) as t:
            session = await self._session(request, t)
            await self._records().revoke(session.token_hash)
        return JSONResponse({"revoked": True}, headers=NO_STORE)

    async def _session(self, request: Request, trail: Trail) -> CliSession:
        """RFC 6750 §2.1: the broker session token in `Authorization: Bearer`."""
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingToken(
                "Send the broker session token as `Authorization: Bearer …` (broker login).",
                headers={"WWW-Authenticate": 'Bearer realm="broker"'},
            )
        session = await self._records().session(token.strip(), runtime_of(request).clock.now())
        trail.identity(session.identity)
        return session


@contextmanager
def _login_again(rt: Runtime) -> Iterator[None]:
    """A pass-through role past STS's redemption window: the terminal cannot go back through
    the IdP by itself, so the refusal says what to run."""
    try:
        yield
    except ReauthenticationRequired as exc:
        again = ReauthenticationRequired(
            "Your sign-in is older than AWS accepts for this role (it is reached with your "
            f"identity provider's own assertion); run: broker login --url {rt.config.server.base_url}",
            log_detail=exc.log_detail,
        )
        again.error_id = exc.error_id
        raise again from None


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise InvalidRequest(f"{name} is required.")
    return value
