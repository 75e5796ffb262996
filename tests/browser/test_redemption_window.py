"""In a real browser, both ways of reaching AWS past STS's redemption window (here 2 seconds):
pass-through goes back through the IdP by itself and lands on the console as the role clicked,
with no stale call to STS; issuer mode needs no trip to the IdP at all."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from broker_demo.aws import AwsStandIn, serve_asgi
from tests.fakes.browser import IdpPages, screenshot
from tests.fakes.issuer import issuer_section, signing_keys
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


@pytest.fixture(scope="module")
def issuer_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SamlWorld, str]]:
    pages = IdpPages()
    tmp = tmp_path_factory.mktemp("issuer-window")
    standin = AwsStandIn(saml_redemption_seconds=WINDOW)
    keys = signing_keys(tmp / "keys", "broker")
    with (
        serve_asgi(pages.app) as idp_url,
        saml_world(
            tmp,
            sso_url=idp_url + "/sso",
            standin=standin,
            aws={"saml_redemption_seconds": WINDOW},
            issuer=issuer_section(keys),
        ) as world,
    ):
        pages.world = world
        yield world, idp_url


def test_issuer_mode_outlives_the_window_without_the_idp(
    page: Page, issuer_mode: tuple[SamlWorld, str]
) -> None:
    """The broker signs a fresh assertion per click: the session lasts its own length, and a
    second role after the window needs no trip to the IdP."""
    world, idp_url = issuer_mode
    page.goto(idp_url + "/portal")
    expect(page.locator("h1")).to_have_text("AWS accounts")
    expect(page.locator("#reauth")).to_have_count(0)
    page.locator("li.role", has_text="deployer").get_by_role(
        "button", name=re.compile("^Open the console")
    ).click()
    expect(page.locator("#caller-arn")).to_contain_text("assumed-role/deployer/")
    page.goto(world.url + "/")
    time.sleep(WINDOW)
    sso_requests: list[str] = []
    page.on("request", lambda r: sso_requests.append(r.url) if "/sso?" in r.url else None)
    page.locator("li.role", has_text="reader").get_by_role(
        "button", name=re.compile("^Open the console")
    ).click()
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::444455556666:assumed-role/reader/"
    )
    screenshot(page, "console-issuer-mode-after-window")
    assert sso_requests == []
    calls = world.sts_calls()
    assert [c.outcome for c in calls] == ["ok", "ok"]
    assert all(c.principal_arn.endswith(":saml-provider/broker") for c in calls)
