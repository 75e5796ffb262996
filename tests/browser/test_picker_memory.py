"""The picker remembers a person across sign-ins: the roles they opened (Recent) and the ones
they starred (Favourites), shown first, in a fresh browser after signing out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from broker_demo.aws import serve_asgi
from tests.fakes.browser import IdpPages, screenshot
from tests.fakes.saml_world import DEPLOYER, READER, SamlWorld, saml_world
from tests.fakes.servers import free_port

pytestmark = pytest.mark.browser
DANA = "dana@example.com"


@pytest.fixture(scope="module")
def idp_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SamlWorld, str]]:
    """The broker served at its own base_url: a page's script posts with the Origin the
    broker expects (the other worlds serve on a port their base_url does not name)."""
    pages = IdpPages()
    port = free_port()
    tmp = tmp_path_factory.mktemp("picker-memory")
    with (
        serve_asgi(pages.app) as idp_url,
        saml_world(
            tmp, sso_url=idp_url + "/sso", port=port, base_url=f"http://127.0.0.1:{port}"
        ) as world,
    ):
        pages.world = world
        yield world, idp_url


def _fresh_page(chromium: Browser, **options: Any) -> Page:
    context = chromium.new_context(viewport={"width": 1100, "height": 800}, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def test_recent_and_favourites_follow_the_person_to_a_new_browser(
    chromium: Browser, idp_world: tuple[SamlWorld, str]
) -> None:
    world, idp_url = idp_world
    page = _fresh_page(chromium)
    try:
        page.goto(f"{idp_url}/portal?name_id={DANA}")
        expect(page.locator("h1")).to_have_text("AWS accounts")
        expect(page.locator("#favourites")).to_be_hidden()
        expect(page.locator("#recent")).to_have_count(0)

        grid = page.locator("#accounts")
        grid.locator("li.role", has_text="reader").get_by_role(
            "button", name=re.compile("^Open the console")
        ).click()
        expect(page.locator("#caller-arn")).to_contain_text("assumed-role/reader/")

        page.goto(world.url + "/")
        expect(page.locator("#recent li.role")).to_have_count(1)
        star = grid.get_by_role("button", name="Favourite: deployer in Production")
        expect(star).to_have_attribute("aria-pressed", "false")
        page.evaluate("window.notReloaded = true")
        star.click()
        # The script keeps the page: the star is pressed, the role joins Favourites.
        expect(star).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#favourites")).to_be_visible()
        expect(page.locator("#favourites li.role")).to_have_attribute("data-arn", DEPLOYER)
        screenshot(page, "picker-favourite-starred")
        # By keyboard, from Favourites: unstarred, the row goes and focus stays on the role.
        page.locator("#favourites").get_by_role("button", name=re.compile("^Favourite")).focus()
        page.keyboard.press("Enter")
        expect(page.locator("#favourites")).to_be_hidden()
        expect(star).to_be_focused()
        expect(star).to_have_attribute("aria-pressed", "false")
        page.keyboard.press("Space")
        expect(star).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#favourites li.role")).to_have_count(1)
        assert page.evaluate("window.notReloaded === true"), "the script starred in place"

        page.get_by_role("button", name="Sign out").click()
        expect(page.locator("h1")).to_have_text("Signed out")
    finally:
        page.context.close()

    page = _fresh_page(chromium)
    try:
        page.goto(f"{idp_url}/portal?name_id={DANA}")
        expect(page.locator("h1")).to_have_text("AWS accounts")
        sections = page.locator("main > section")
        expect(sections.nth(0)).to_have_attribute("id", "favourites")
        expect(sections.nth(1)).to_have_attribute("id", "recent")
        expect(page.get_by_role("region", name="Favourites").locator("li.role")).to_have_attribute(
            "data-arn", DEPLOYER
        )
        recent = page.get_by_role("region", name="Recent").locator("li.role")
        expect(recent).to_have_attribute("data-arn", READER)
        expect(recent).to_contain_text("Analytics")
        expect(recent).to_contain_text("last used")
        first_role = page.locator("li.role").first
        expect(first_role).to_have_attribute("data-arn", DEPLOYER)
        screenshot(page, "picker-favourites-and-recent")

        # From Favourites straight to the console: the rules still decide.
        page.get_by_role("region", name="Favourites").get_by_role(
            "button", name=re.compile("^Open the console as deployer")
        ).click()
        expect(page.locator("#caller-arn")).to_contain_text("assumed-role/deployer/")
        assert [c.role_arn for c in world.sts_calls()][-2:] == [READER, DEPLOYER]
    finally:
        page.context.close()


def test_a_star_works_without_javascript(
    chromium: Browser, idp_world: tuple[SamlWorld, str]
) -> None:
    world, idp_url = idp_world
    signed_in = _fresh_page(chromium)
    try:
        signed_in.goto(f"{idp_url}/portal?name_id=erin@example.com")
        expect(signed_in.locator("h1")).to_have_text("AWS accounts")
        state = signed_in.context.storage_state()
    finally:
        signed_in.context.close()
    page = _fresh_page(chromium, java_script_enabled=False, storage_state=state)
    try:
        page.goto(world.url + "/")
        expect(page.locator("#favourites")).to_be_hidden()
        page.locator("#accounts").get_by_role(
            "button", name="Favourite: reader in Analytics"
        ).click()
        expect(page.locator("h1")).to_have_text("AWS accounts")
        favourites = page.get_by_role("region", name="Favourites")
        expect(favourites.locator("li.role")).to_have_attribute("data-arn", READER)
        favourites.get_by_role("button", name="Favourite: reader in Analytics").click()
        expect(page.locator("#favourites")).to_be_hidden()
        expect(
            page.locator("#accounts").get_by_role("button", name="Favourite: reader in Analytics")
        ).to_have_attribute("aria-pressed", "false")
    finally:
        page.context.close()
