"""A real browser with the IdP on another site than the broker (localhost vs 127.0.0.1), over
http loopback and over https: the IdP's cross-site POST still carries the pending-login
cookie, and another site's link to the console asks first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from broker_demo.aws import serve_asgi
from tests.fakes.browser import IdpPages, screenshot
from tests.fakes.pki import Pki
from tests.fakes.saml_world import SamlWorld, saml_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=["http", "https"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SamlWorld, str]]:
    pages = IdpPages()
    tmp = tmp_path_factory.mktemp(f"cross-site-{request.param}")
    tls: tuple[Path, Path] | None = None
    server: dict[str, Any] = {}
    if request.param == "https":
        tls = Pki.create(tmp / "pki", "broker").tls_files()
        server = {"base_url": "https://127.0.0.1:8443"}
    with serve_asgi(pages.app) as served:
        # Another site: browsers tell sites apart by host (and scheme), not by port.
        idp_url = served.replace("127.0.0.1", "localhost")
        with saml_world(tmp, sso_url=idp_url + "/sso", tls=tls, **server) as w:
            pages.world = w
            yield w, idp_url


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(
        viewport={"width": 1100, "height": 800}, ignore_https_errors=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def test_sp_initiated_sign_in_from_another_site(page: Page, world: tuple[SamlWorld, str]) -> None:
    broker, _ = world
    with page.expect_response(lambda r: "/saml/login" in r.url) as login:
        page.goto(broker.url + "/console?role=admin&destination=s3&region=eu-central-1")
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::111122223333:assumed-role/admin/"
    )
    cookie = (login.value.header_value("set-cookie") or "").lower()
    if broker.url.startswith("https://"):
        assert cookie.startswith("__host-broker_login=")
        assert "samesite=none" in cookie
        assert "secure" in cookie
    else:
        assert cookie.startswith("broker_login=")
        assert "samesite" not in cookie


def test_another_sites_link_to_the_console_asks_first(
    page: Page, world: tuple[SamlWorld, str]
) -> None:
    broker, idp_url = world
    page.goto(broker.url + "/")
    expect(page.locator("h1")).to_have_text("AWS accounts")
    calls = len(broker.sts_calls())
    page.goto(idp_url + "/link?to=" + quote(broker.url + "/console?role=reader", safe=""))
    page.locator("#link").click()
    expect(page.locator("h1")).to_have_text("Open the AWS console?")
    screenshot(page, f"confirm-{broker.url.split(':')[0]}")
    assert len(broker.sts_calls()) == calls, "nothing minted on another site's link"
    page.get_by_role("button", name="Open the console").click()
    expect(page.locator("#caller-arn")).to_contain_text("assumed-role/reader/")
    assert len(broker.sts_calls()) == calls + 1
