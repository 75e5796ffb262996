"""Back through the IdP when a kept sign-in is older than AWS redeems, the person's choice kept.

A pass-through browser session holds the IdP's assertion, and STS redeems it only within 5
minutes of its IssueInstant. Past that, a click does not reach STS to fail there: the browser
goes to the IdP again (an SP-initiated sign-in, usually without a prompt) and comes back to
the very request it made — the same role, destination, region, console or command line."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from fastapi.responses import RedirectResponse, Response

from broker.config import Config, SamlIdp
from broker.http.frontdoor import SignInMethod
from broker.http.render import page
from broker.identity import Identity


def reauthenticate(
    methods: Sequence[SignInMethod], identity: Identity, next_path: str, config: Config
) -> Response:
    """To the sign-in of the IdP this person came from; an IdP that takes no SP-initiated
    sign-in gets a page that sends them to its portal."""
    method = next((m for m in methods if m.idp == identity.idp), None)
    if method is not None:
        return RedirectResponse(method.start_url(next_path), status_code=303)
    idp = config.identity_providers.get(identity.idp)
    portal = idp.portal_url if isinstance(idp, SamlIdp) else None
    return page(
        "reauth.html",
        status=401,
        title="Sign in again",
        idp=identity.idp,
        portal=portal,
        code="ReauthenticationRequired",
    )


def console_path(role: str | None, destination: str | None, region: str | None) -> str:
    fields = {"role": role, "destination": destination, "region": region}
    return "/console?" + urlencode({k: v for k, v in fields.items() if v})


def cli_path(role: str | None) -> str:
    return "/cli-credentials?" + urlencode({"role": role or ""})
