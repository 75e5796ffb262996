"""People's OIDC sign-in over HTTP, against oidc-provider: the code flow to the picker, and every
refusal (state from another browser, a replayed code, a wrong nonce, an expired sign-in, the
IdP's access_denied) with its code, no session cookie and no STS call."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from operator import attrgetter
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest

from broker.oidc.pending import PendingSignIn
from tests.fakes.oidc_login_world import DEPLOYER, IDP, LoginWorld, login_world
from tests.peers.oidc_provider import OidcProviderPeer

pytestmark = pytest.mark.peers

PERSON = {"email": "ada@example.com", "email_verified": True, "groups": ["aws-users"]}


@pytest.fixture(scope="module")
def world(
    oidc_provider: OidcProviderPeer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoginWorld]:
    oidc_provider.add_person("ada", PERSON)
    oidc_provider.add_person("nobody", {"email": "nobody@example.com", "groups": []})
    with login_world(tmp_path_factory.mktemp("oidc-signin"), oidc_provider) as w:
        yield w


def pending_of(world: LoginWorld, browser: httpx.Client) -> PendingSignIn:
    (found,) = world.pending.loads(browser.cookies.get(world.pending.cookie), time.time())
    return found


def put_pending(world: LoginWorld, browser: httpx.Client, pending: PendingSignIn) -> None:
    browser.cookies.set(world.pending.cookie, world.pending.dumps([pending]))


def test_sign_in_reaches_the_picker_and_the_console(world: LoginWorld) -> None:
    world.standin.reset()
    with world.client() as browser:
        authorize = world.start(browser, "/")
        query = parse_qs(urlsplit(authorize).query)
        assert authorize.startswith(world.provider.discovery["authorization_endpoint"])
        assert query["code_challenge_method"] == ["S256"]
        assert query["response_type"] == ["code"]
        assert query["redirect_uri"] == [world.url + "/oidc/callback"]
        assert set(query["scope"][0].split()) == {"openid", "email", "profile"}
        pending = pending_of(world, browser)
        assert query["state"] == [pending.state]
        assert query["nonce"] == [pending.nonce]
        assert pending.verifier not in authorize  # only its S256 challenge travels

        r = browser.get(world.at_idp(authorize, "ada"))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/"
        assert r.headers["cache-control"] == "no-store"
        assert "broker_session" in browser.cookies
        assert world.pending.cookie not in browser.cookies  # used up
        picker = browser.get("/", headers={"accept": "text/html"})
        assert "deployer" in picker.text
        assert "admin" in picker.text
        assert world.standin.calls == []  # signing in calls nothing

        csrf = world.csrf(browser)
        r = browser.post("/console", data={"role": "deployer", "csrf": csrf})
        assert r.status_code == 303, r.text
        world.secrets.extend(parse_qs(urlsplit(r.headers["location"]).query).get("SigninToken", []))
    (call,) = world.sts_calls()
    assert call.action == "AssumeRoleWithWebIdentity"
    assert call.role_arn == DEPLOYER
    granted = [e for e in world.audit() if e["event"] == "oidc-signin"]
    assert granted[-1]["outcome"] == "granted"
    assert granted[-1]["idp"] == IDP


def test_next_is_where_the_sign_in_lands(world: LoginWorld) -> None:
    with world.client() as browser:
        authorize = world.start(browser, "/?destination=s3")
        r = browser.get(world.at_idp(authorize, "ada"))
    assert r.status_code == 303
    assert r.headers["location"] == "/?destination=s3"


@pytest.mark.parametrize("bad", ["https://evil.example/", "//evil.example/", "relative"])
def test_next_must_be_a_path_here(world: LoginWorld, bad: str) -> None:
    with world.client() as browser:
        r = browser.get("/oidc/login", params={"idp": IDP, "next": bad})
    assert r.status_code == 400
    assert "location" not in r.headers


def test_login_without_idp_goes_straight_to_the_only_one(world: LoginWorld) -> None:
    with world.client() as browser:
        r = browser.get("/oidc/login", params={"next": "/"})
        assert r.status_code == 303
        assert r.headers["location"].startswith(world.provider.discovery["authorization_endpoint"])
        assert browser.get("/oidc/login", params={"idp": "nope"}).status_code == 404


def test_the_chooser_and_an_unsigned_picker_offer_the_oidc_sign_in(world: LoginWorld) -> None:
    with world.client() as browser:
        chooser = browser.get("/signin", params={"next": "/"})
        assert "Test IdP (OIDC)" in chooser.text
        assert "/oidc/login?idp=corp" in chooser.text
        r = browser.get("/")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/oidc/login?idp=corp")


def test_an_id_token_of_the_broker_is_no_program_credential(world: LoginWorld) -> None:
    """The ID token's audience is the broker's client ID, which is not among the programs'
    `audiences`: /v1/credentials refuses it (InvalidAudience) and calls no STS."""
    world.standin.reset()
    with world.client() as browser:
        authorize = world.start(browser)
        pending = pending_of(world, browser)
        code = parse_qs(urlsplit(world.at_idp(authorize, "ada")).query)["code"][0]
    (secret,) = world.secrets[:1]
    basic = base64.b64encode(f"{world.client_id}:{secret}".encode()).decode()
    tokens = httpx.post(
        world.provider.discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": world.url + "/oidc/callback",
            "code_verifier": pending.verifier,
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert tokens.status_code == 200, tokens.text
    id_token = tokens.json()["id_token"]
    world.secrets.append(id_token)
    r = httpx.post(
        world.url + "/v1/credentials",
        params={"role": "deployer"},
        headers={"Authorization": f"Bearer {id_token}"},
    )
    assert r.status_code == 401
    assert r.json()["code"] == "InvalidAudience"
    assert world.standin.calls == []


@dataclass(frozen=True)
class Refusal:
    name: str
    code: str
    # Plays the browser up to the callback: returns the callback URL to send (as `browser`).
    play: Callable[[LoginWorld, httpx.Client], str]


def _another_browsers_callback(world: LoginWorld, browser: httpx.Client) -> str:
    """Login CSRF: a callback URL (code and state) from a sign-in another browser started."""
    with world.client() as other:
        return world.at_idp(world.start(other), "ada")


def _replayed_code(world: LoginWorld, browser: httpx.Client) -> str:
    """The same callback twice, the pending cookie restored: the IdP's code is single use."""
    authorize = world.start(browser)
    saved = browser.cookies.get(world.pending.cookie)
    callback = world.at_idp(authorize, "ada")
    first = browser.get(callback)
    assert first.status_code == 303, first.text
    browser.cookies.clear()
    browser.cookies.set(world.pending.cookie, saved or "")
    return callback


def _replayed_request(world: LoginWorld, browser: httpx.Client) -> str:
    """The same authorization request answered twice (a new code each time): the sign-in it
    started lands once."""
    authorize = world.start(browser)
    saved = browser.cookies.get(world.pending.cookie)
    first = browser.get(world.at_idp(authorize, "ada"))
    assert first.status_code == 303, first.text
    browser.cookies.clear()
    browser.cookies.set(world.pending.cookie, saved or "")
    return world.at_idp(authorize, "ada")


def _wrong_nonce(world: LoginWorld, browser: httpx.Client) -> str:
    """The right state and PKCE verifier, another nonce than the ID token carries."""
    authorize = world.start(browser)
    put_pending(world, browser, replace(pending_of(world, browser), nonce="not-the-nonce-sent"))
    return world.at_idp(authorize, "ada")


def _expired(world: LoginWorld, browser: httpx.Client) -> str:
    authorize = world.start(browser)
    pending = pending_of(world, browser)
    put_pending(world, browser, replace(pending, started=time.time() - 601))
    return world.at_idp(authorize, "ada")


def _denied(world: LoginWorld, browser: httpx.Client) -> str:
    return world.at_idp(world.start(browser), "ada", deny=True)


def _no_code(world: LoginWorld, browser: httpx.Client) -> str:
    world.start(browser)
    return world.url + "/oidc/callback?state=" + pending_of(world, browser).state


def _no_state(world: LoginWorld, browser: httpx.Client) -> str:
    callback = world.at_idp(world.start(browser), "ada")
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    return f"{world.url}/oidc/callback?code={code}"


def _with_iss(callback: str, iss: str | None) -> str:
    parts = urlsplit(callback)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "iss"]
    if iss is not None:
        query.append(("iss", iss))
    return parts._replace(query=urlencode(query)).geturl()


def _another_issuer(world: LoginWorld, browser: httpx.Client) -> str:
    """RFC 9207 mix-up: the answer names another IdP than the one this sign-in went to."""
    callback = world.at_idp(world.start(browser), "ada")
    assert parse_qs(urlsplit(callback).query)["iss"] == [world.provider.issuer]
    return _with_iss(callback, "https://attacker.example")


def _no_issuer(world: LoginWorld, browser: httpx.Client) -> str:
    """The IdP announces `iss` in its answers (discovery): one without it is refused."""
    return _with_iss(world.at_idp(world.start(browser), "ada"), None)


def _no_roles(world: LoginWorld, browser: httpx.Client) -> str:
    return world.at_idp(world.start(browser), "nobody")


REFUSALS = [
    Refusal("state-from-another-browser", "StateMismatch", _another_browsers_callback),
    Refusal("replayed-code", "AuthorizationCodeRefused", _replayed_code),
    Refusal("replayed-request", "ReplayDetected", _replayed_request),
    Refusal("wrong-nonce", "InvalidNonce", _wrong_nonce),
    Refusal("expired-pending", "StateMismatch", _expired),
    Refusal("access-denied", "SignInRefusedByIdp", _denied),
    Refusal("no-code", "MalformedRequest", _no_code),
    Refusal("no-state", "StateMismatch", _no_state),
    Refusal("no-role", "NoRoleGranted", _no_roles),
    Refusal("another-issuer", "InvalidIssuer", _another_issuer),
    Refusal("no-issuer", "InvalidIssuer", _no_issuer),
]


@pytest.mark.parametrize("case", REFUSALS, ids=attrgetter("name"))
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_refused_callbacks(world: LoginWorld, case: Refusal, accept: str) -> None:
    with world.client() as browser:
        callback = case.play(world, browser)
        world.standin.reset()
        before = len(world.audit())
        r = browser.get(callback, headers={"accept": accept})
    assert 400 <= r.status_code < 500, r.text
    assert "broker_session" not in r.headers.get("set-cookie", "")
    assert r.headers["cache-control"] == "no-store"
    assert world.standin.calls == []
    assert world.standin.federation_calls == []
    if accept == "text/html":
        assert r.headers["content-type"].startswith("text/html")
        assert case.code in r.text
    else:
        body = r.json()
        assert body["code"] == case.code
        if case.code in ("StateMismatch", "AuthorizationCodeRefused", "InvalidNonce"):
            assert body["sign_in_again"].startswith("/oidc/login?")
    events = world.audit()[before:]
    assert [(e["outcome"], e["code"]) for e in events] == [("refused", case.code)]


ID_TOKEN_SECONDS = 3


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginWorld]:
    """An IdP whose ID tokens live 3 s, and a broker session that outlives them (issuer
    mode); a small redemption margin (10% of 2 s) so the test waits only for the expiry."""
    peer = OidcProviderPeer(id_token_ttl=ID_TOKEN_SECONDS)
    peer.start()
    try:
        peer.add_person("ada", PERSON)
        tmp = tmp_path_factory.mktemp("oidc-reauth")
        with login_world(tmp, peer, aws={"saml_redemption_seconds": 2}) as w:
            yield w
    finally:
        peer.stop()


def test_an_expired_id_token_goes_back_through_the_idp_not_to_sts(
    short_lived: LoginWorld,
) -> None:
    """A pass-through role after the ID token's expiry: no STS call with it; the browser goes
    back through the IdP (start_url of the OIDC sign-in) and comes back to the same click."""
    world = short_lived
    world.standin.reset()
    with world.client() as browser:
        r = browser.get(world.at_idp(world.start(browser), "ada"))
        assert r.status_code == 303, r.text
        csrf = world.csrf(browser)
        time.sleep(ID_TOKEN_SECONDS + 0.5)
        issuer_mode = browser.post("/console", data={"csrf": csrf, "role": "admin"})
        assert issuer_mode.status_code == 303, issuer_mode.text  # the broker's own assertion
        assert "Action=login" in issuer_mode.headers["location"]
        world.secrets.extend(
            parse_qs(urlsplit(issuer_mode.headers["location"]).query).get("SigninToken", [])
        )
        late = browser.post("/console", data={"csrf": csrf, "role": "deployer"})
        assert late.status_code == 303, late.text
        location = late.headers["location"]
        assert location.startswith("/oidc/login?idp=corp&")
        assert parse_qs(urlsplit(location).query)["next"] == ["/console?role=deployer"]
        assert [c.action for c in world.sts_calls()] == ["AssumeRoleWithSAML"]

        authorize = browser.get(location)
        assert authorize.status_code == 303
        back = browser.get(world.at_idp(authorize.headers["location"], "ada"))
        assert back.headers["location"] == "/console?role=deployer"
        console = browser.get(back.headers["location"])
        assert console.status_code == 303, console.text
        world.secrets.extend(
            parse_qs(urlsplit(console.headers["location"]).query).get("SigninToken", [])
        )
    actions = [(c.action, c.role_arn) for c in world.sts_calls()]
    assert actions[-1] == ("AssumeRoleWithWebIdentity", DEPLOYER)


@pytest.mark.parametrize("started_by", ["same-origin", "cross-site"])
def test_a_sign_in_another_site_started_asks_before_the_console(
    world: LoginWorld, started_by: str
) -> None:
    """Login CSRF's cousin: another site's link may start a sign-in that lands on a console
    link; after the IdP, the console asks first instead of opening (the same rule as SAML)."""
    world.standin.reset()
    cross = {"sec-fetch-site": "cross-site"}
    with world.client() as browser:
        r = browser.get(
            "/oidc/login",
            params={"idp": IDP, "next": "/console?role=deployer"},
            headers={"sec-fetch-site": started_by},
        )
        landed = browser.get(world.at_idp(r.headers["location"], "ada"), headers=cross)
        assert landed.headers["location"] == "/console?role=deployer"
        console = browser.get(landed.headers["location"], headers={**cross, "accept": "text/html"})
        if started_by == "cross-site":
            assert console.status_code == 200, console.text
            assert 'action="/console"' in console.text
            assert world.sts_calls() == []
        else:
            assert console.status_code == 303, console.text
            assert "Action=login" in console.headers["location"]
            world.secrets.extend(
                parse_qs(urlsplit(console.headers["location"]).query).get("SigninToken", [])
            )
            assert len(world.sts_calls()) == 1
