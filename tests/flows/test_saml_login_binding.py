"""SP-initiated sign-in bound to the browser that started it: pending logins live in a signed
cookie, never in the store, and the ACS takes an answer only from the browser that asked."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from broker.store import MemoryStore
from tests.fakes.saml_world import SamlWorld, saml_world

pytestmark = pytest.mark.peers

PENDING = "broker_login"  # plain name on http loopback; __Host-broker_login over https
JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("login-binding")) as w:
        yield w


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "world" in request.fixturenames:
        request.getfixturevalue("world").standin.reset()


def _store_size(world: SamlWorld) -> int:
    store = world.app.state.runtime.store
    assert isinstance(store, MemoryStore)
    return len(store._data)


def _set_cookies(response: httpx.Response) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k == "set-cookie"]


def _refused(r: httpx.Response, code: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["code"] == code
    assert not any(c.startswith("broker_session=") for c in _set_cookies(r)), "no session"


def test_anonymous_logins_leave_the_store_alone(world: SamlWorld) -> None:
    """5,000 anonymous GET /saml/login write nothing server-side; a real sign-in still works."""
    before = _store_size(world)
    with world.client() as anonymous:
        for _ in range(5000):
            r = anonymous.get("/saml/login", params={"next": "/console?role=admin"})
            assert r.status_code == 303
            anonymous.cookies.clear()
    assert _store_size(world) == before
    with world.client() as person:
        request_id = world.start_login(person, "/?region=eu-west-1")
        r = person.post(
            "/saml/acs", data={"SAMLResponse": world.response(in_response_to=request_id)}
        )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/?region=eu-west-1"


def test_the_pending_login_cookie(world: SamlWorld) -> None:
    with world.client() as browser:
        r = browser.get("/saml/login", params={"next": "/console?role=reader"})
        [cookie] = [c for c in _set_cookies(r) if c.startswith(PENDING + "=")]
        sso = parse_qs(urlsplit(r.headers["location"]).query)
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "httponly" in attributes
    assert "path=/" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    # http loopback: no Secure, so no SameSite=None (browsers drop that); see broker.saml.pending
    assert "secure" not in attributes
    assert any(a.startswith("max-age=") for a in attributes)
    assert "RelayState" not in sso, "the next path never travels through the IdP"


def test_own_answer_signs_in_and_goes_on_to_next(world: SamlWorld) -> None:
    with world.client() as browser:
        request_id = world.start_login(browser, "/?destination=s3")
        r = browser.post(
            "/saml/acs", data={"SAMLResponse": world.response(in_response_to=request_id)}
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/?destination=s3"
        cookies = _set_cookies(r)
        assert any(c.startswith("broker_session=") for c in cookies)
        # The answered request leaves the browser's pending logins.
        assert any(c.startswith(PENDING + "=") and "max-age=0" in c.lower() for c in cookies)


def test_one_of_several_pending_logins(world: SamlWorld) -> None:
    """Two tabs started a sign-in each: either answer is taken, each with its own next."""
    with world.client() as browser:
        first = world.start_login(browser, "/?tab=1")
        second = world.start_login(browser, "/?tab=2")
        r = browser.post("/saml/acs", data={"SAMLResponse": world.response(in_response_to=first)})
        assert r.headers["location"] == "/?tab=1"
        r = browser.post("/saml/acs", data={"SAMLResponse": world.response(in_response_to=second)})
        assert r.headers["location"] == "/?tab=2"


def test_another_browsers_request_is_refused(world: SamlWorld) -> None:
    """Login CSRF: the attacker's own AuthnRequest, answered for the attacker, posted by the
    victim's browser (with no pending login, or with one of its own) signs nobody in."""
    with world.client() as attacker:
        request_id = world.start_login(attacker, "/console?role=admin")
    saml = world.response(in_response_to=request_id, name_id="mallory@example.com")
    with world.client() as victim:
        _refused(
            victim.post("/saml/acs", data={"SAMLResponse": saml}, headers=JSON),
            "SignInNotStartedHere",
        )
        world.start_login(victim, "/")
        _refused(
            victim.post("/saml/acs", data={"SAMLResponse": saml}, headers=JSON),
            "SignInNotStartedHere",
        )
        assert victim.get("/", headers=HTML).status_code == 303, "still not signed in"
    assert world.standin.calls == []
    assert world.standin.federation_calls == []
    refusals = [e for e in world.audit() if e.get("code") == "SignInNotStartedHere"]
    assert refusals
    assert all(e["outcome"] == "refused" for e in refusals)


def test_a_forged_or_altered_cookie_is_no_pending_login(world: SamlWorld) -> None:
    with world.client() as attacker:
        request_id = world.start_login(attacker)
        real = attacker.cookies[PENDING]
    saml = world.response(in_response_to=request_id)
    for value in (real[:-2] + ("AA" if not real.endswith("AA") else "BB"), "e30", "x" * 300):
        with world.client() as victim:
            victim.cookies.set(PENDING, value)
            _refused(
                victim.post("/saml/acs", data={"SAMLResponse": saml}, headers=JSON),
                "SignInNotStartedHere",
            )
    assert world.standin.calls == []


def test_a_request_is_answered_once(world: SamlWorld) -> None:
    """InResponseTo is single use even when the old cookie is presented again; the same
    response again is an assertion replay."""
    with world.client() as browser:
        request_id = world.start_login(browser)
        kept = browser.cookies[PENDING]
        saml = world.response(in_response_to=request_id)
        assert browser.post("/saml/acs", data={"SAMLResponse": saml}).status_code == 303
        browser.cookies.set(PENDING, kept)
        again = browser.post("/saml/acs", data={"SAMLResponse": saml}, headers=JSON)
        second = world.response(in_response_to=request_id)
        other = browser.post("/saml/acs", data={"SAMLResponse": second}, headers=JSON)
    assert again.status_code == 401
    assert again.json()["code"] == "ReplayDetected"
    assert other.status_code == 401
    assert other.json()["code"] == "UnknownInResponseTo"


def test_refusals_offer_to_sign_in_again_to_the_same_next(world: SamlWorld) -> None:
    with world.client() as attacker:
        request_id = world.start_login(attacker)
    saml = world.response(in_response_to=request_id)
    with world.client() as victim:
        world.start_login(victim, "/?destination=ec2")
        page = victim.post("/saml/acs", data={"SAMLResponse": saml}, headers=HTML)
        problem = victim.post("/saml/acs", data={"SAMLResponse": saml}, headers=JSON)
    assert page.status_code == 401
    assert 'id="error-code">SignInNotStartedHere' in page.text
    assert 'id="sign-in-again" href="/saml/login?next=%2F%3Fdestination%3Dec2"' in page.text
    assert problem.json()["sign_in_again"] == "/saml/login?next=%2F%3Fdestination%3Dec2"


def test_a_replayed_response_offers_to_sign_in_again(world: SamlWorld) -> None:
    with world.client() as browser:
        saml = world.response()
        assert browser.post("/saml/acs", data={"SAMLResponse": saml}).status_code == 303
        page = browser.post("/saml/acs", data={"SAMLResponse": saml}, headers=HTML)
    assert page.status_code == 401
    assert 'id="error-code">ReplayDetected' in page.text
    assert 'id="sign-in-again" href="/saml/login?next=%2F"' in page.text
