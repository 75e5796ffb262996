"""What the browser tests share: chromium's flags, an IdP's web pages, screenshots."""

from __future__ import annotations

import base64
import re
import zlib
from html import escape
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.fakes.saml_world import SamlWorld

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _post_form(action: str, fields: dict[str, str]) -> HTMLResponse:
    """What an IdP sends a browser: a form that posts itself (SAML Bindings §3.5)."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )
    return HTMLResponse(
        f"<!doctype html><html><body><p>Test IdP: signing you in…</p>"
        f'<form method="post" action="{escape(action)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script></body></html>"
    )


class IdpPages:
    """GET /portal: IdP-initiated (`?name_id=` signs in someone other than alice); GET /sso:
    answers an AuthnRequest (HTTP-Redirect binding); GET /link?to=…: a page on this (other)
    site that links to `to`."""

    def __init__(self) -> None:
        self.world: SamlWorld | None = None
        self.app = Starlette(
            routes=[
                Route("/portal", self.portal),
                Route("/sso", self.sso),
                Route("/link", self.link),
            ]
        )

    def _acs(self) -> str:
        assert self.world is not None
        return self.world.url + "/saml/acs"

    async def portal(self, request: Request) -> HTMLResponse:
        assert self.world is not None
        who = (
            {"name_id": request.query_params["name_id"]}
            if "name_id" in request.query_params
            else {}
        )
        return _post_form(self._acs(), {"SAMLResponse": self.world.response(**who)})

    async def sso(self, request: Request) -> HTMLResponse:
        assert self.world is not None
        xml = zlib.decompress(base64.b64decode(request.query_params["SAMLRequest"]), -15)
        found = re.search(rb'ID="([^"]+)"', xml)
        assert found is not None
        fields = {"SAMLResponse": self.world.response(in_response_to=found.group(1).decode())}
        if "RelayState" in request.query_params:
            fields["RelayState"] = request.query_params["RelayState"]
        return _post_form(self._acs(), fields)

    async def link(self, request: Request) -> HTMLResponse:
        to = escape(request.query_params["to"])
        return HTMLResponse(f'<!doctype html><html><body><a id="link" href="{to}">{to}</a>')


def screenshot(page: Page, name: str, **kwargs: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, **kwargs)
