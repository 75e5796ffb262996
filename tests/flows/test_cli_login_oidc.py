"""`broker login` when people sign in with OIDC: the terminal's authorization request sends the
browser through the OIDC sign-in and back to its confirm page; the session token then mints
with the ID token (AssumeRoleWithWebIdentity)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.cli_login import Pkce, authorize, bearer, query_of
from tests.fakes.oidc_login_world import DEPLOYER, IDP, LoginWorld, login_world
from tests.peers.oidc_provider import OidcProviderPeer

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def world(
    oidc_provider: OidcProviderPeer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoginWorld]:
    oidc_provider.add_person(
        "grace", {"email": "grace@example.com", "email_verified": True, "groups": ["aws-users"]}
    )
    with login_world(tmp_path_factory.mktemp("cli-oidc"), oidc_provider) as w:
        yield w


def test_the_terminal_signs_in_through_the_oidc_sign_in(world: LoginWorld) -> None:
    world.standin.reset()
    pkce = Pkce()
    with world.client() as browser:
        first = browser.get("/cli/authorize", params=pkce.params())
        assert first.status_code == 303, first.text
        login = first.headers["location"]
        assert login.startswith("/oidc/login?")
        to_idp = browser.get(login)
        assert to_idp.status_code == 303, to_idp.text
        callback = world.at_idp(to_idp.headers["location"], "grace")
        back = browser.get(callback)
        assert back.status_code == 303, back.text
        assert back.headers["location"].startswith("/cli/authorize?")
        assert world.standin.calls == []  # signing in calls nothing

        answer = authorize(browser, pkce)
        assert answer.status_code == 303, answer.text
        to_terminal = query_of(answer.headers["location"])
        assert to_terminal["state"] == pkce.state
        world.secrets.append(to_terminal["code"])
        issued = browser.post("/cli/token", data=pkce.token_form(to_terminal["code"]))
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        world.secrets.append(token)
        assert issued.json()["idp"] == IDP

    with world.client() as terminal:
        roles = terminal.get("/cli/roles", headers=bearer(token))
        assert {r["name"] for r in roles.json()["roles"]} == {"deployer", "admin"}
        minted = terminal.post("/cli/credentials", json={"role": "deployer"}, headers=bearer(token))
    assert minted.status_code == 200, minted.text
    assert minted.json()["Version"] == 1
    world.secrets.append(minted.json()["SessionToken"])
    (call,) = world.sts_calls()
    assert (call.action, call.role_arn) == ("AssumeRoleWithWebIdentity", DEPLOYER)
