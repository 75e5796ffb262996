"""SAML front door: SP metadata, SP-initiated sign-in, the ACS (browser) and CLI credentials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from broker.config import Config, SamlIdp
from broker.console_url.federation import destination_url
from broker.errors import BrokerError, MalformedRequest, NotFound
from broker.http.deps import RuntimeDep, client_address
from broker.http.frontdoor import Landing, SignInMethod
from broker.http.origin import from_another_site, origin_of
from broker.http.problems import sign_in_again
from broker.http.readers import (
    parse_duration,
    read_form,
    request_options,
    response_format,
    safe_next,
)
from broker.http.render import render_credentials
from broker.runtime import Runtime
from broker.saml.authn import start_login
from broker.saml.metadata import sp_metadata
from broker.saml.pending import PendingLogin, PendingLogins
from broker.saml.settings import SamlIdpRuntime, SpEndpoints, load_idps, sp_endpoints
from broker.saml.verify import SamlVerifier


@dataclass(frozen=True, slots=True)
class SamlState:
    """What startup resolved once: our SP endpoints, the IdPs and their verifier, the
    pending-login cookie and our origin."""

    sp: SpEndpoints
    idps: Mapping[str, SamlIdpRuntime]
    verifier: SamlVerifier
    pending: PendingLogins
    origin: str


def saml_idps(config: Config) -> dict[str, SamlIdp]:
    return {n: i for n, i in config.identity_providers.items() if isinstance(i, SamlIdp)}


def relay_destination(relay_state: str | None, partition: str) -> str:
    """IdPs moved from AWS's own SAML endpoint keep their "default relay state", a console
    URL that AWS's endpoint opens. A RelayState that is an https URL on the partition's
    console (the deep links' allow-list) becomes the destination; anything else is ignored,
    never followed."""
    if not relay_state or not relay_state.startswith("https://") or len(relay_state) > 2048:
        return "/"
    try:
        destination_url(partition, relay_state, None)
    except BrokerError:
        return "/"
    return "/?" + urlencode({"destination": relay_state})


def login_url(next_path: str, idp: str | None = None) -> str:
    query = {"next": next_path} if idp is None else {"idp": idp, "next": next_path}
    return "/saml/login?" + urlencode(query)


class SamlFrontDoor:
    def __init__(self, landing: Landing) -> None:
        self._landing = landing
        self._state: SamlState | None = None

    @property
    def state(self) -> SamlState:
        if self._state is None:
            raise RuntimeError("the SAML front door was not started")
        return self._state

    async def start(self, rt: Runtime) -> None:
        """Load the IdPs (metadata, certificates) once and set up the verifier."""
        config = rt.config
        sp = sp_endpoints(config.server)
        idps = await load_idps(saml_idps(config), sp, rt.http)
        verifier = SamlVerifier(
            idps,
            sp,
            partition=config.aws.partition,
            store=rt.store,
            roles_optional=config.issuer is not None,
            max_response_bytes=config.server.max_body_bytes,
        )
        pending = PendingLogins(rt.secrets, secure=config.server.base_url.startswith("https://"))
        self._state = SamlState(sp, idps, verifier, pending, origin_of(config.server.base_url))

    def sign_in_methods(self) -> list[SignInMethod]:
        """The IdPs that take an SP-initiated sign-in (they have an SSO URL)."""
        if self._state is None:
            return []
        return [
            SignInMethod(name, name, lambda nxt, name=name: login_url(nxt, name))  # type: ignore[misc]
            for name, idp in sorted(self._state.idps.items())
            if idp.sso_url
        ]

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/saml/metadata", self.metadata, methods=["GET"])
        router.add_api_route("/saml/login", self.login, methods=["GET"])
        router.add_api_route("/saml/acs", self.acs, methods=["POST"])
        router.add_api_route("/v1/saml/credentials", self.credentials, methods=["POST"])
        return router

    async def metadata(self) -> Response:
        return Response(
            sp_metadata(self.state.sp),
            media_type="application/samlmetadata+xml",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def login(
        self,
        request: Request,
        idp: str | None = None,
        next_path: Annotated[str | None, Query(alias="next")] = None,
    ) -> Response:
        """SP-initiated sign-in (HTTP-Redirect binding). The request ID and `next` go into
        the browser's signed pending-login cookie, not the store: an anonymous caller costs
        the server nothing, and only this browser can bring the answer back."""
        state = self.state
        target = safe_next(next_path)
        if idp is None:
            usable = [m.idp for m in self.sign_in_methods()]
            if len(usable) != 1:  # the browser's chooser lists every way to sign in
                return RedirectResponse("/signin?" + urlencode({"next": target}), 303)
            idp = usable[0]
        chosen = state.idps.get(idp)
        if chosen is None:
            raise NotFound("There is no identity provider by that name.")
        now = datetime.now(UTC)
        started = start_login(chosen, state.sp, now=now)
        here = not from_another_site(request, state.origin)
        login = PendingLogin(started.request_id, chosen.name, target, now.timestamp(), here)
        response = RedirectResponse(started.url, status_code=303)
        logins = state.pending.read(request, now.timestamp())
        state.pending.write(response, state.pending.add(logins, login))
        return response

    async def acs(self, request: Request, rt: RuntimeDep) -> Response:
        """HTTP-POST binding, IdP- or SP-initiated: verify (an SP-initiated answer only to a
        request this browser started), then hand the person to the browser session."""
        state = self.state
        now = datetime.now(UTC)
        logins = state.pending.read(request, now.timestamp())
        restart = login_url(logins[0].next if logins else "/")
        with sign_in_again(restart):
            async with rt.audit.decision(
                "saml-signin", "saml-browser", client_address(request)
            ) as trail:
                form = await read_form(request, what="the SAMLResponse")
                saml_response = form.get("SAMLResponse")
                if not saml_response:
                    raise MalformedRequest("The sign-in did not include a SAMLResponse.")
                # An SP-initiated sign-in goes back to the browser's own pending `next`; the
                # RelayState is read only for an IdP-initiated one (below).
                identity, answered = await state.verifier.verify_sign_in(
                    saml_response, now=now, started={p.request_id: p.idp for p in logins}
                )
                trail.identity(identity)
                login = next((p for p in logins if p.request_id == answered), None)
                if login is None:  # IdP-initiated: the broker chooses where to go
                    target = relay_destination(form.get("RelayState"), rt.config.aws.partition)
                    return await self._landing.sign_in(request, identity, target, trail)
                response = await self._landing.sign_in(
                    request, identity, login.next, trail, ask_first=not login.here
                )
        state.pending.write(response, [p for p in logins if p is not login])
        return response

    async def credentials(self, request: Request, rt: RuntimeDep) -> Response:
        """A CLI tool trades a base64 SAMLResponse (single use) for credentials."""
        async with rt.audit.decision("credentials", "saml-api", client_address(request)) as trail:
            params = await request_options(
                request, ("SAMLResponse", "role", "duration_seconds", "format")
            )
            fmt = response_format(params)
            duration = parse_duration(params.get("duration_seconds"))
            saml_response = params.get("SAMLResponse")
            if not saml_response:
                raise MalformedRequest("Send the base64 SAMLResponse in the SAMLResponse field.")
            now = datetime.now(UTC)
            identity = trail.identity(await self.state.verifier.verify(saml_response, now=now))
            issued = await rt.exchange.issue(identity, params.get("role"), trail, duration=duration)
        return render_credentials(issued.credentials, issued.grant.arn, fmt)
