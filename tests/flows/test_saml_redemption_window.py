"""Pass-through SAML meets STS's redemption window (5 minutes after the IssueInstant; here 2
seconds, on the broker and on the stand-in alike): before it, clicks reach STS; after it, no
click reaches STS to be refused there — the browser goes back through the IdP and returns to
the very request it made."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from broker_demo.aws import AwsStandIn
from tests.fakes.saml_world import READER, SamlWorld, saml_world

pytestmark = pytest.mark.peers
WINDOW = 2.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SamlWorld]:
    standin = AwsStandIn(saml_redemption_seconds=WINDOW)
    with saml_world(tmp_path, standin=standin, aws={"saml_redemption_seconds": WINDOW}) as w:
        yield w


def _outcomes(world: SamlWorld) -> list[str]:
    return [c.outcome for c in world.sts_calls()]


def _next_of(location: str) -> str:
    assert location.startswith("/saml/login?"), location
    return parse_qs(urlsplit(location).query)["next"][0]


def test_a_stale_assertion_is_refused_before_sts(world: SamlWorld) -> None:
    """A CLI posting an assertion past the window gets a clear refusal and no STS call (STS
    itself would answer ExpiredTokenException; tests/demo covers the stand-in doing so)."""
    old = world.response()
    time.sleep(WINDOW)
    with world.client() as client:
        r = client.post(
            "/v1/saml/credentials",
            data={"SAMLResponse": old, "role": "deployer"},
            headers={"accept": "application/json"},
        )
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "ReauthenticationRequired"
    assert world.sts_calls() == []


def test_a_late_console_click_goes_back_through_the_idp_and_opens_the_console(
    world: SamlWorld,
) -> None:
    with world.client() as client:
        world.sign_in(client)
        csrf = world.csrf(client)
        first = client.post("/console", data={"csrf": csrf, "role": "deployer"})
        assert first.status_code == 303, first.text
        assert "Action=login" in first.headers["location"]
        time.sleep(WINDOW)
        choice = {"csrf": csrf, "role": READER, "destination": "s3", "region": "eu-west-1"}
        late = client.post("/console", data=choice)
        assert late.status_code == 303, late.text
        back_to = _next_of(late.headers["location"])
        assert urlsplit(back_to).path == "/console"
        assert parse_qs(urlsplit(back_to).query) == {
            "role": [READER],
            "destination": ["s3"],
            "region": ["eu-west-1"],
        }
        assert _outcomes(world) == ["ok"], "no call to STS with the stale assertion"
        # The IdP answers the broker's AuthnRequest (it knows the person: no prompt) ...
        request_id = world.start_login(client, back_to)
        landed = client.post(
            "/saml/acs", data={"SAMLResponse": world.response(in_response_to=request_id)}
        )
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == back_to
        # ... and the browser lands on the console it asked for, as the role it chose.
        console = client.get(back_to)
        assert console.status_code == 303, console.text
        assert "Action=login" in console.headers["location"]
        assert "s3" in parse_qs(urlsplit(console.headers["location"]).query)["Destination"][0]
    assert _outcomes(world) == ["ok", "ok"]


def test_a_late_command_line_request_comes_back_to_its_role(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        csrf = world.csrf(client)
        time.sleep(WINDOW)
        late = client.post("/cli-credentials", data={"csrf": csrf, "role": "reader"})
        assert late.status_code == 303, late.text
        back_to = _next_of(late.headers["location"])
        assert back_to == "/cli-credentials?role=reader"
        request_id = world.start_login(client, back_to)
        client.post("/saml/acs", data={"SAMLResponse": world.response(in_response_to=request_id)})
        # One click (a form with the CSRF token) shows the credentials; a GET mints nothing.
        again = client.get(back_to, headers={"accept": "text/html"})
        assert again.status_code == 200, again.text
        assert 'action="/cli-credentials"' in again.text
        assert 'value="reader"' in again.text
    assert _outcomes(world) == []


def test_the_picker_shows_the_real_limit(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        page = client.get("/", headers={"accept": "text/html"})
    assert 'id="reauth"' in page.text
    assert "through corp again" in page.text


def test_an_idp_without_sp_initiated_sign_in_gets_a_page_not_a_redirect(tmp_path: Path) -> None:
    standin = AwsStandIn(saml_redemption_seconds=WINDOW)
    with (
        saml_world(
            tmp_path, sso_url=None, standin=standin, aws={"saml_redemption_seconds": WINDOW}
        ) as world,
        world.client() as client,
    ):
        world.sign_in(client)
        csrf = world.csrf(client)
        time.sleep(WINDOW)
        late = client.post(
            "/console", data={"csrf": csrf, "role": "deployer"}, headers={"accept": "text/html"}
        )
    assert late.status_code == 401
    assert "Sign in again" in late.text
    assert "ReauthenticationRequired" in late.text
    assert world.sts_calls() == []
