"""A real browser (Debian's chromium via Playwright), a tiny IdP web page, the broker and AWS."""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from broker_demo.aws import serve_asgi
from tests.flows.test_saml_console import SamlWorld, saml_world

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
    """GET /portal: IdP-initiated; GET /sso: answers an AuthnRequest (HTTP-Redirect binding)."""

    def __init__(self) -> None:
        self.world: SamlWorld | None = None
        self.app = Starlette(routes=[Route("/portal", self.portal), Route("/sso", self.sso)])

    def _acs(self) -> str:
        assert self.world is not None
        return self.world.url + "/saml/acs"

    async def portal(self, request: Request) -> HTMLResponse:
        assert self.world is not None
        return _post_form(self._acs(), {"SAMLResponse": self.world.response()})

    async def sso(self, request: Request) -> HTMLResponse:
        assert self.world is not None
        xml = zlib.decompress(base64.b64decode(request.query_params["SAMLRequest"]), -15)
        found = re.search(rb'ID="([^"]+)"', xml)
        assert found is not None
        fields = {"SAMLResponse": self.world.response(in_response_to=found.group(1).decode())}
        if "RelayState" in request.query_params:
            fields["RelayState"] = request.query_params["RelayState"]
        return _post_form(self._acs(), fields)


@pytest.fixture(scope="module")
def idp_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SamlWorld, str]]:
    pages = IdpPages()
    tmp = tmp_path_factory.mktemp("browser")
    with serve_asgi(pages.app) as idp_url, saml_world(tmp, sso_url=idp_url + "/sso") as world:
        pages.world = world
        yield world, idp_url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Page, name: str, **kwargs: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, **kwargs)
