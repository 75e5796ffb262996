"""OIDC front door for people: browser sign-in with the authorization code flow and PKCE.

`GET /oidc/login` sends the browser to the IdP's authorization endpoint with a fresh state,
nonce and PKCE challenge, which a sealed cookie of this browser keeps (nothing on the server).
`GET /oidc/callback` takes the IdP's answer only for a state that cookie names, redeems the
code, verifies the ID token with the programs' verifier (audience: the broker's client ID),
checks the nonce, and hands the person to the browser's `Landing`, as SAML does."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import partial
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from broker.config import Config, OidcIdp
from broker.errors import (
    BrokerError,
    InvalidIssuer,
    InvalidNonce,
    MalformedRequest,
    NotFound,
    ReplayDetected,
    SignInRefusedByIdp,
    StateMismatch,
)
from broker.http.deps import RuntimeDep, client_address
from broker.http.frontdoor import Landing, SignInMethod
from broker.http.origin import from_another_site, origin_of
from broker.http.problems import SIGN_IN_AGAIN, sign_in_again
from broker.http.readers import safe_next
from broker.http.render import NO_STORE
from broker.identity import Identity
from broker.oidc.authcode import VERIFIER_LENGTH, SignInClient, error_code, random_token
from broker.oidc.pending import PENDING_SECONDS, PendingSignIn, PendingSignIns, find
from broker.runtime import Runtime

FRONT_DOOR = "oidc-browser"
CALLBACK = "/oidc/callback"
#: The callback's parameters are short opaque strings (RFC 6749 §4.1.2); far longer is abuse.
MAX_PARAM = 2048
_NO_REFERRER = {"Referrer-Policy": "no-referrer"}
#: A sign-in's state, once it landed (by its hash: the store never holds the state itself).
USED_STATE_KEY = "oidc-state-used:{}"
# Refusals a fresh sign-in cures, on top of the shared ones: the page offers one.
_START_AGAIN = ("StateMismatch", "SignInRefusedByIdp", "AuthorizationCodeRefused", "InvalidNonce")


def login_idps(config: Config) -> dict[str, OidcIdp]:
    return {
        n: i for n, i in config.identity_providers.items() if isinstance(i, OidcIdp) and i.login
    }


def login_url(next_path: str, idp: str | None = None) -> str:
    query = {"next": next_path} if idp is None else {"idp": idp, "next": next_path}
    return "/oidc/login?" + urlencode(query)


class OidcSignIn:
    def __init__(self, landing: Landing, config: Config) -> None:
        self._landing = landing
        self._idps = login_idps(config)
        self._clients: dict[str, SignInClient] = {}
        self._pending: PendingSignIns | None = None
        self._origin = origin_of(config.server.base_url)

    @property
    def pending(self) -> PendingSignIns:
        if self._pending is None:
            raise RuntimeError("the OIDC sign-in front door was not started")
        return self._pending

    async def start(self, rt: Runtime) -> None:
        """Read each client's secret or key (a missing file stops startup), then the IdPs'
        discovery documents: one that cannot be read now is read again on the first sign-in
        (after the IdP's refresh floor), and that sign-in waits or fails with 503."""
        base = rt.config.server.base_url.rstrip("/")
        self._clients = {
            name: SignInClient.from_config(name, idp, base + CALLBACK)
            for name, idp in self._idps.items()
        }
        self._pending = PendingSignIns(
            rt.secrets, secure=rt.config.server.base_url.startswith("https://")
        )
        for name in self._idps:
            # Logged by the key cache; sign-ins to it answer 503 until it is back.
            with suppress(BrokerError):
                await rt.oidc.sign_in_endpoints(name)

    def sign_in_methods(self) -> list[SignInMethod]:
        return [
            SignInMethod(name, idp.label or name, partial(login_url, idp=name))
            for name, idp in sorted(self._idps.items())
        ]

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/oidc/login", self.login, methods=["GET"])
        router.add_api_route(CALLBACK, self.callback, methods=["GET"])
        return router

    async def login(
        self,
        request: Request,
        rt: RuntimeDep,
        idp: str | None = None,
        next_path: Annotated[str | None, Query(alias="next")] = None,
    ) -> Response:
        """To the IdP's authorization endpoint (and only there). State, nonce and the PKCE
        verifier go into this browser's sealed cookie: an anonymous GET costs no storage."""
        target = safe_next(next_path)
        if idp is None:
            if len(self._idps) != 1:  # the browser's chooser lists every way to sign in
                return RedirectResponse("/signin?" + urlencode({"next": target}), 303)
            idp = next(iter(self._idps))
        client = self._clients.get(idp)
        if client is None:
            raise NotFound("There is no identity provider by that name.")
        endpoints = await rt.oidc.sign_in_endpoints(idp)
        now = datetime.now(UTC).timestamp()
        started = PendingSignIn(
            state=random_token(),
            nonce=random_token(),
            verifier=random_token(VERIFIER_LENGTH),
            idp=idp,
            next=target,
            started=now,
            here=not from_another_site(request, self._origin),
        )
        url = client.authorization_url(
            endpoints.authorization_endpoint,
            state=started.state,
            nonce=started.nonce,
            verifier=started.verifier,
        )
        response = RedirectResponse(url, status_code=303, headers={**NO_STORE, **_NO_REFERRER})
        pending = self.pending
        pending.write(response, pending.add(pending.read(request, now), started))
        return response

    async def callback(self, request: Request, rt: RuntimeDep) -> Response:
        """The IdP's answer (RFC 6749 §4.1.2): a code, or an error, with our state."""
        pending = self.pending
        now = datetime.now(UTC)
        started = pending.read(request, now.timestamp())
        ours = find(started, request.query_params.get("state", "")[:MAX_PARAM])
        if ours is not None and ours.idp not in self._clients:
            ours = None  # started for an IdP that is no longer configured
        restart = login_url(ours.next if ours else "/", ours.idp if ours else None)
        with _offer_sign_in(restart):
            async with rt.audit.decision(
                "oidc-signin", FRONT_DOOR, client_address(request)
            ) as trail:
                params = _callback_params(request.query_params)
                if ours is None:
                    raise StateMismatch(
                        "This sign-in was not started in this browser, or it took too long; "
                        "sign in again.",
                        log_detail=f"pending={len(started)} state={'state' in params}",
                    )
                trail.idp = ours.idp
                identity = await self._verified(rt, ours, params, now)
                trail.identity(identity)
                response = await self._landing.sign_in(
                    request, identity, ours.next, trail, ask_first=not ours.here
                )
        pending.write(response, [p for p in started if p is not ours])
        response.headers.update({**NO_STORE, **_NO_REFERRER})
        return response

    async def _verified(
        self, rt: Runtime, ours: PendingSignIn, params: Mapping[str, str], now: datetime
    ) -> Identity:
        if "error" in params:
            endpoints = await rt.oidc.sign_in_endpoints(ours.idp)
            _check_issuer(params.get("iss"), self._idps[ours.idp].issuer, endpoints.iss_parameter)
            error = error_code(params["error"])
            raise SignInRefusedByIdp(
                f"The identity provider did not sign you in ({error}).",
                log_detail=f"idp={ours.idp} error={error}",
            )
        code = params.get("code")
        if not code:
            raise MalformedRequest("The identity provider's answer has no authorization code.")
        client = self._clients[ours.idp]
        endpoints = await rt.oidc.sign_in_endpoints(ours.idp)
        _check_issuer(params.get("iss"), self._idps[ours.idp].issuer, endpoints.iss_parameter)
        id_token = await client.redeem(rt.http, endpoints.token_endpoint, code, ours.verifier)
        identity = await rt.oidc.verify(id_token, now=now.timestamp(), sign_in=ours.idp)
        nonce = identity.attributes.get("nonce")
        # OIDC Core §3.1.3.7 (11): the nonce must be the one this browser's request sent.
        if not isinstance(nonce, str) or not hmac.compare_digest(
            nonce.encode("utf-8", "surrogatepass"), ours.nonce.encode("utf-8", "surrogatepass")
        ):
            raise InvalidNonce(
                "The ID token does not answer this browser's sign-in (nonce).",
                log_detail=f"idp={ours.idp} nonce={'present' if nonce else 'missing'}",
            )
        # Each sign-in lands once, even at an IdP that would answer its request twice. Written
        # only once a signed ID token has passed: anonymous callers cannot make the store grow.
        used = USED_STATE_KEY.format(hashlib.sha256(ours.state.encode()).hexdigest()[:32])
        if not await rt.store.add(used, b"1", PENDING_SECONDS):
            raise ReplayDetected(
                "This sign-in has already been used; sign in again.",
                log_detail=f"idp={ours.idp} state already used",
            )
        return identity


def _check_issuer(iss: str | None, issuer: str, required: bool) -> None:
    """RFC 9207 §2.4 (mix-up): an `iss` in the answer must be the IdP this sign-in went to,
    and an IdP that announces the parameter must send it."""
    if iss is None and not required:
        return
    if iss is None or not hmac.compare_digest(
        iss.encode("utf-8", "surrogatepass"), issuer.encode()
    ):
        raise InvalidIssuer(
            "The sign-in answer does not come from the identity provider it went to.",
            log_detail=f"iss={'missing' if iss is None else repr(iss[:200])} expected={issuer}",
        )


def _callback_params(query: Mapping[str, str]) -> dict[str, str]:
    """The parameters the callback reads, each once and bounded; anything else is ignored."""
    out = {}
    for name in ("code", "state", "error", "iss"):
        value = query.get(name)
        if value is None:
            continue
        if len(value) > MAX_PARAM:
            raise MalformedRequest(f"The sign-in answer's {name} is too long.")
        out[name] = value
    return out


@contextmanager
def _offer_sign_in(url: str) -> Iterator[None]:
    """A refusal a fresh sign-in cures offers one, on the error page and in the problem."""
    with sign_in_again(url):
        try:
            yield
        except BrokerError as exc:
            if exc.code in _START_AGAIN:
                exc.extra.setdefault(SIGN_IN_AGAIN, url)
            raise
