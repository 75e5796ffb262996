"""The employee in a real browser: IdP page → picker → filter → Console → the AWS console."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.fakes.browser import screenshot
from tests.fakes.saml_world import SamlWorld

pytestmark = pytest.mark.browser


def test_idp_initiated_picker_filter_and_console(
    page: Page, idp_world: tuple[SamlWorld, str]
) -> None:
    world, idp_url = idp_world
    page.goto(idp_url + "/portal")
    expect(page.locator("h1")).to_have_text("AWS accounts")
    expect(page.locator("section.account h2")).to_have_count(2)
    expect(page.locator("section.account").first).to_contain_text("Analytics")
    expect(page.locator("#filter")).to_be_focused()
    screenshot(page, "picker")

    page.locator("#filter").press_sequentially("analy")
    expect(page.locator("#accounts li.role:visible")).to_have_count(1)
    expect(page.locator("section.account:visible h2")).to_contain_text("Analytics")
    screenshot(page, "picker-filtered")

    page.locator("#accounts li.role:visible").get_by_role(
        "button", name=re.compile("^Open the console")
    ).click()
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::444455556666:assumed-role/reader/"
    )
    screenshot(page, "console")
    assert [c.role_arn for c in world.sts_calls()][-1].endswith(":role/reader")


def test_keyboard_only_filter_and_enter(page: Page, idp_world: tuple[SamlWorld, str]) -> None:
    _, idp_url = idp_world
    page.goto(idp_url + "/portal")
    page.keyboard.type("deployer")
    expect(page.locator("#accounts li.role:visible")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#caller-arn")).to_contain_text("assumed-role/deployer/")


def test_deep_link_goes_through_sp_initiated_login(
    page: Page, idp_world: tuple[SamlWorld, str]
) -> None:
    world, _ = idp_world
    page.goto(world.url + "/console?role=admin&destination=s3&region=eu-central-1")
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::111122223333:assumed-role/admin/"
    )
    expect(page.locator("#destination")).to_have_text(
        "https://console.aws.amazon.com/s3/home?region=eu-central-1"
    )
    screenshot(page, "deep-link-console")


def test_command_line_credentials_page(page: Page, idp_world: tuple[SamlWorld, str]) -> None:
    _, idp_url = idp_world
    page.goto(idp_url + "/portal")
    row = page.locator("#accounts li.role", has_text="admin")
    row.get_by_role("button", name=re.compile("^Command-line")).click()
    expect(page.locator("#env")).to_contain_text("export AWS_ACCESS_KEY_ID=")
    expect(page.locator("#credential-process-config")).to_contain_text("credential_process")
    expect(page.locator("#credentials-file")).to_contain_text("[admin]\naws_access_key_id = ")
    expect(page.locator("#expiry")).to_have_text(re.compile(r"^\(in (\d+ h )?\d+ min \d+ s\)$"))
    screenshot(page, "cli")


def test_command_line_page_by_keyboard_tabs_and_copy(
    chromium: Browser, idp_world: tuple[SamlWorld, str]
) -> None:
    """Arrow keys move between the shells; Enter on a Copy button puts the block on the
    clipboard (the clipboard API, as over https or on localhost)."""
    _, idp_url = idp_world
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(idp_url + "/portal")
        row = page.locator("#accounts li.role", has_text="admin")
        row.get_by_role("button", name=re.compile("^Command-line")).click()
        expect(page.locator("#panel-fish")).to_be_hidden()
        page.get_by_role("tab", name="bash, zsh").focus()
        page.keyboard.press("ArrowRight")
        expect(page.get_by_role("tab", name="fish")).to_be_focused()
        expect(page.get_by_role("tab", name="fish")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#panel-fish")).to_be_visible()
        expect(page.locator("#panel-bash")).to_be_hidden()
        expect(page.locator("#env-fish")).to_contain_text("set -gx AWS_SESSION_TOKEN '")
        page.keyboard.press("End")
        expect(page.get_by_role("tab", name="Windows cmd")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Copy Windows cmd commands")).to_be_focused()
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.keyboard.press("Enter")
        expect(page.locator("#env-cmd-status")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.replace("\r\n", "\n") == page.locator("#env-cmd").text_content()
        assert 'set "AWS_SESSION_TOKEN=' in copied
        wide = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert wide, "the credential blocks overflow a 390 px screen"
        screenshot(page, "cli-390-cmd")
    finally:
        context.close()


def test_picker_remembers_the_region_and_opens_a_role_in_a_new_tab(
    page: Page, idp_world: tuple[SamlWorld, str]
) -> None:
    _, idp_url = idp_world
    page.goto(idp_url + "/portal")
    page.get_by_label("Console Region").fill("eu-west-1")
    page.get_by_label("Console Region").press("Tab")
    page.reload()
    expect(page.get_by_label("Console Region")).to_have_value("eu-west-1")
    screenshot(page, "picker-region")

    row = page.locator("#accounts li.role", has_text="reader")
    with page.context.expect_page() as opened:
        row.get_by_role("button", name=re.compile("^In a new tab: the console as reader")).click()
    tab = opened.value
    expect(tab.locator("#caller-arn")).to_contain_text("assumed-role/reader/")
    expect(tab.locator("#destination")).to_have_text(
        "https://console.aws.amazon.com/console/home?region=eu-west-1"
    )
    expect(page.locator("h1")).to_have_text("AWS accounts")
