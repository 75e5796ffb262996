"""A real browser (Debian's chromium via Playwright), a tiny IdP web page, the broker and AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from broker_demo.aws import serve_asgi
from tests.fakes.browser import CHROMIUM_ARGS, IdpPages
from tests.fakes.saml_world import SamlWorld, saml_world


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
