"""Every page a person sees, at a phone's width (390 px) and a laptop's (1280 px): no
horizontal scroll, and no axe-core violation of impact moderate or worse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from broker_demo.aws import serve_asgi
from broker_demo.idp import DemoIdp
from tests.fakes.browser import screenshot
from tests.fakes.saml_world import SamlWorld

pytestmark = pytest.mark.browser
AXE = (
    Path(__file__).resolve().parents[1]
    / "peers"
    / "axe"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
SERIOUS = {"moderate", "serious", "critical"}


@pytest.fixture(scope="module")
def demo_idp_url() -> Iterator[str]:
    """The demo IdP's own pages (its answers go nowhere here: only its pages are looked at)."""
    idp = DemoIdp(base_url="http://127.0.0.1", acs_url="http://127.0.0.1/saml/acs")
    with serve_asgi(idp.app) as url:
        yield url


def findings(page: Page, name: str) -> list[str]:
    """What is wrong with the page now showing, one line each; its screenshot either way."""
    screenshot(page, name)
    found = []
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        found.append(f"{name}: {widths[0]} px wide in a {widths[1]} px window")
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("axe.run()")
    for v in result["violations"]:
        if v["impact"] in SERIOUS:
            where = ", ".join(" ".join(n["target"]) for n in v["nodes"][:3])
            found.append(f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {where}")
    return found


@pytest.mark.parametrize("width", [390, 1280])
def test_every_page_fits_and_passes_axe(
    chromium: Browser, idp_world: tuple[SamlWorld, str], demo_idp_url: str, width: int
) -> None:
    assert AXE.is_file(), "scripts/setup --test installs axe-core in tests/peers/axe"
    world, idp_url = idp_world
    context = chromium.new_context(viewport={"width": width, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    found: list[str] = []
    try:
        page.goto(world.url + "/signin")
        found += findings(page, f"pages-{width}-signin")

        page.goto(idp_url + "/portal")
        expect(page.locator("h1")).to_have_text("AWS accounts")
        # With a favourite (and, the second time round, recent roles) above the accounts.
        star = page.locator("#accounts").get_by_role(
            "button", name="Favourite: reader in Analytics"
        )
        if star.get_attribute("aria-pressed") == "false":
            star.click()
        expect(page.locator("#favourites li.role")).to_have_count(1)
        found += findings(page, f"pages-{width}-picker")

        row = page.locator("#accounts li.role", has_text="admin")
        row.get_by_role("button", name=re.compile("^Command-line")).click()
        expect(page.locator("#env")).to_be_visible()
        found += findings(page, f"pages-{width}-cli")

        page.goto(world.url + "/cli-credentials?role=admin")
        expect(page.locator("#confirm")).to_be_visible()
        found += findings(page, f"pages-{width}-confirm")

        page.goto(world.url + "/console?role=admin&destination=no-such-service")
        expect(page.locator("#error-code")).to_be_visible()
        found += findings(page, f"pages-{width}-error")

        page.goto(world.url + "/")
        row = page.locator("#accounts li.role", has_text="admin")
        row.get_by_role("button", name=re.compile("^Open the console")).click()
        expect(page.locator("#caller-arn")).to_be_visible()
        found += findings(page, f"pages-{width}-console")

        page.goto(world.url + "/")
        page.get_by_role("button", name="Sign out").click()
        expect(page.locator("h1")).to_have_text("Signed out")
        found += findings(page, f"pages-{width}-signed-out")

        page.goto(demo_idp_url + "/")
        expect(page.locator("#user-alice")).to_be_visible()
        found += findings(page, f"pages-{width}-demo-idp")

        page.goto(demo_idp_url + "/sso?SAMLRequest=not-base64")
        found += findings(page, f"pages-{width}-demo-idp-error")
    finally:
        context.close()
    assert not found, "\n".join(found)
