"""In a real browser: signed in through the IdP, a console click after STS's redemption window
(here 2 seconds) goes back through the IdP by itself and lands on the console as the role
clicked, with no click that reaches STS with a stale assertion."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from broker_demo.aws import AwsStandIn, serve_asgi
from tests.fakes.browser import IdpPages, screenshot
from tests.fakes.saml_world import SamlWorld, saml_world

pytestmark = pytest.mark.browser
WINDOW = 2.0


@pytest.fixture(scope="module")
def short_window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SamlWorld, str]]:
    pages = IdpPages()
    tmp = tmp_path_factory.mktemp("window")
    standin = AwsStandIn(saml_redemption_seconds=WINDOW)
    with (
        serve_asgi(pages.app) as idp_url,
        saml_world(
            tmp,
            sso_url=idp_url + "/sso",
            standin=standin,
            aws={"saml_redemption_seconds": WINDOW},
        ) as world,
    ):
        pages.world = world
        yield world, idp_url


def test_a_second_role_after_the_window_goes_through_the_idp(
    page: Page, short_window: tuple[SamlWorld, str]
) -> None:
    world, idp_url = short_window
    page.goto(idp_url + "/portal")
    expect(page.locator("h1")).to_have_text("AWS accounts")
    expect(page.locator("#reauth")).to_be_visible()
    row = page.locator("li.role", has_text="deployer")
    row.get_by_role("button", name=re.compile("^Open the console")).click()
    expect(page.locator("#caller-arn")).to_contain_text("assumed-role/deployer/")

    page.goto(world.url + "/")
    time.sleep(WINDOW)
    with page.expect_request(lambda r: "/sso?" in r.url):
        page.locator("li.role", has_text="reader").get_by_role(
            "button", name=re.compile("^Open the console")
        ).click()
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::444455556666:assumed-role/reader/"
    )
    screenshot(page, "console-after-reauthentication")
    outcomes = [c.outcome for c in world.sts_calls()]
    assert outcomes == ["ok", "ok"], outcomes
