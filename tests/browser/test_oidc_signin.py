"""An employee whose IdP speaks OIDC, in a real browser: oidc-provider's login page → the picker
→ the console, through a role passed through (AssumeRoleWithWebIdentity with the ID token) and
a role reached with the broker's own assertion (issuer mode)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.fakes.browser import screenshot
from tests.fakes.oidc_login_world import ADMIN, DEPLOYER, LoginWorld, login_world
from tests.peers.oidc_provider import OidcProviderPeer

pytestmark = pytest.mark.browser

PERSON = {"email": "grace@example.com", "email_verified": True, "groups": ["aws-users"]}
# ID tokens signed RS256 for a client with a secret; ES256 for a private_key_jwt client.
CLIENTS = {"rs256-secret": ("RS256", False), "es256-private-key-jwt": ("ES256", True)}


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def world(
    request: pytest.FixtureRequest,
    oidc_provider: OidcProviderPeer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LoginWorld]:
    alg, private_key_jwt = CLIENTS[request.param]
    oidc_provider.add_person("grace", PERSON)
    tmp = tmp_path_factory.mktemp("oidc-browser")
    with login_world(tmp, oidc_provider, alg=alg, private_key_jwt=private_key_jwt) as w:
        yield w


def sign_in(page: Page, world: LoginWorld, start: str = "/") -> None:
    page.on("request", lambda request: world.saw(request.url))
    page.goto(world.url + start)
    expect(page.locator("h1")).to_have_text("Test IdP")
    page.locator("#username").fill("grace")
    page.get_by_role("button", name="Sign in").click()


def open_console(page: Page, role: str) -> None:
    page.locator("li.role", has_text=role).get_by_role(
        "button", name=re.compile("^Open the console")
    ).click()


def test_sign_in_then_pass_through_console(page: Page, world: LoginWorld) -> None:
    world.standin.reset()
    sign_in(page, world)
    expect(page.locator("h1")).to_have_text("AWS accounts")
    expect(page.locator("section.account h2")).to_have_count(2)
    screenshot(page, "oidc-picker")
    open_console(page, "deployer")
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::111122223333:assumed-role/deployer/grace@example.com"
    )
    (call,) = world.sts_calls()
    assert call.action == "AssumeRoleWithWebIdentity"
    assert call.role_arn == DEPLOYER


def test_sign_in_then_issuer_mode_console(page: Page, world: LoginWorld) -> None:
    world.standin.reset()
    sign_in(page, world)
    open_console(page, "admin")
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::444455556666:assumed-role/admin/"
    )
    (call,) = world.sts_calls()
    assert call.action == "AssumeRoleWithSAML"
    assert call.role_arn == ADMIN


def test_deep_link_signs_in_first_and_lands_on_the_console(page: Page, world: LoginWorld) -> None:
    world.standin.reset()
    sign_in(page, world, "/console?role=deployer&destination=s3&region=eu-west-1")
    expect(page.locator("#caller-arn")).to_contain_text("assumed-role/deployer/")
    expect(page.locator("#destination")).to_have_text(
        "https://console.aws.amazon.com/s3/home?region=eu-west-1"
    )


def test_deny_at_the_idp_shows_an_error_page_with_a_way_back(page: Page, world: LoginWorld) -> None:
    world.standin.reset()
    page.on("request", lambda request: world.saw(request.url))
    page.goto(world.url + "/")
    page.get_by_role("button", name="Deny").click()
    expect(page.locator("#error-code")).to_have_text("SignInRefusedByIdp")
    expect(page.locator("#error-detail")).to_contain_text("access_denied")
    screenshot(page, "oidc-denied")
    assert "broker_session" not in {c["name"] for c in page.context.cookies()}
    assert world.sts_calls() == []
    # The page offers a fresh sign-in, which works this time.
    page.locator("#sign-in-again").click()
    page.locator("#username").fill("grace")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("AWS accounts")


def test_a_callback_in_another_browser_or_twice_is_refused(
    page: Page, chromium: Browser, world: LoginWorld
) -> None:
    """The IdP's answer is good for the browser that asked, once: carried to another browser
    (login CSRF) it is StateMismatch; replayed in the same one after it landed, it is refused
    too. Neither signs anyone in or calls STS."""
    world.standin.reset()
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/oidc/callback?" in r.url else None)
    sign_in(page, world)
    expect(page.locator("h1")).to_have_text("AWS accounts")
    (callback,) = callbacks
    world.saw(callback)

    other = chromium.new_context().new_page()
    try:
        other.goto(callback)
        expect(other.locator("#error-code")).to_have_text("StateMismatch")
        assert "broker_session" not in {c["name"] for c in other.context.cookies()}
    finally:
        other.context.close()

    page.goto(callback)
    expect(page.locator("#error-code")).to_have_text(re.compile("StateMismatch|ReplayDetected"))
    assert world.sts_calls() == []
