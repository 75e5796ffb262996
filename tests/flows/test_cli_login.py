"""`broker login`'s server side over HTTP, against the SAML world (pysaml2-signed sign-ins, the
strict AWS stand-in): loopback codes with PKCE, device codes, the broker session token and what
it may do, and every refusal with its stable code and no STS call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import httpx
import pytest

from broker_demo.aws import AwsStandIn
from tests.fakes.cli_login import (
    CLIENT_ID,
    Pkce,
    authorize,
    bearer,
    csrf_of,
    device_form,
    query_of,
)
from tests.fakes.clock import AheadClock
from tests.fakes.issuer import issuer_section, signing_keys
from tests.fakes.saml_world import DEPLOYER, READER, SamlWorld, saml_world

pytestmark = pytest.mark.peers
WINDOW = 2.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("cli-login")) as w:
        yield w


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "world" in request.fixturenames:
        request.getfixturevalue("world").standin.reset()


@contextmanager
def _signed_in(world: SamlWorld, **kwargs: object) -> Iterator[httpx.Client]:
    with world.client() as client:
        assert world.sign_in(client, **kwargs).status_code == 303
        yield client


def _login(world: SamlWorld, client: httpx.Client) -> str:
    """The whole loopback exchange; the broker session token."""
    pkce = Pkce()
    answer = authorize(client, pkce)
    assert answer.status_code == 303, answer.text
    query = query_of(answer.headers["location"])
    assert query["state"] == pkce.state
    world.secrets.append(query["code"])
    r = client.post("/cli/token", data=pkce.token_form(query["code"]))
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    world.secrets.append(token)
    return token


def test_a_code_becomes_a_session_token_that_gets_credentials_and_the_console(
    world: SamlWorld,
) -> None:
    with _signed_in(world) as browser:
        pkce = Pkce()
        page = browser.get("/cli/authorize", params=pkce.params(), headers={"accept": "text/html"})
        assert "Sign in the command line on this computer as" in page.text
        assert "alice@example.com" in page.text
        answer = browser.post(
            "/cli/authorize", data={**pkce.params(), "csrf": csrf_of(page), "decision": "allow"}
        )
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location.startswith(pkce.redirect_uri + "?")
        code = query_of(location)["code"]
        world.secrets.append(code)
    with httpx.Client(base_url=world.url) as cli:  # the command line: no cookie
        r = cli.post("/cli/token", data=pkce.token_form(code))
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        token = body["access_token"]
        world.secrets.append(token)
        assert token.startswith("bst_")
        assert body["token_type"] == "Bearer"
        assert (body["subject"], body["idp"]) == ("alice@example.com", "corp")
        assert 0 < body["expires_in"] <= 300
        assert token not in {s for s in world.secrets[:-1]}  # not an IdP assertion

        roles = cli.get("/cli/roles", headers=bearer(token)).json()
        assert {r["name"] for r in roles["roles"]} == {"deployer", "admin", "reader"}
        assert {"name", "arn", "account_id", "account_name"} == set(roles["roles"][0])

        creds = cli.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
        assert creds.status_code == 200, creds.text
        assert creds.headers["cache-control"] == "no-store"
        process = creds.json()
        assert process["Version"] == 1
        assert set(process) == {
            "Version",
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration",
        }
        world.secrets += [process["SecretAccessKey"], process["SessionToken"]]
        assert world.sts_calls()[-1].role_arn == READER

        console = cli.post(
            "/cli/console",
            json={"role": "deployer", "destination": "s3", "region": "eu-west-1"},
            headers=bearer(token),
        )
        assert console.status_code == 200, console.text
        landed = world.follow_to_console(console.json()["url"])
        assert landed.status_code == 200
        assert "assumed-role/deployer/" in landed.text
    events = [e for e in world.audit() if e.get("front_door") == "terminal"]
    assert {"cli-authorize", "cli-token", "cli-credentials", "console"} <= {
        e["event"] for e in events
    }


BAD_AUTHORIZE = {
    "not loopback": {"redirect_uri": "http://evil.example:5000/callback"},
    "https loopback": {"redirect_uri": "https://127.0.0.1:5000/callback"},
    "no port": {"redirect_uri": "http://127.0.0.1/callback"},
    "no redirect": {"redirect_uri": ""},
    "another client": {"client_id": "other"},
    "implicit": {"response_type": "token"},
    "plain": {"code_challenge_method": "plain"},
    "no challenge": {"code_challenge": ""},
    "short challenge": {"code_challenge": "abc"},
    "no state": {"state": ""},
}


@pytest.mark.parametrize("case", BAD_AUTHORIZE.values(), ids=BAD_AUTHORIZE.keys())
@pytest.mark.parametrize("signed_in", [False, True], ids=["no session", "signed in"])
def test_a_bad_request_gets_an_error_page_never_a_redirect(
    world: SamlWorld, case: dict[str, str], signed_in: bool
) -> None:
    with _signed_in(world) if signed_in else world.client() as client:
        params = Pkce().params(**case)
        page = client.get("/cli/authorize", params=params, headers={"accept": "text/html"})
        assert 400 <= page.status_code < 500
        assert "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html")
        post = client.post("/cli/authorize", data={**params, "csrf": "x", "decision": "allow"})
        assert 400 <= post.status_code < 500
        assert "location" not in post.headers


def test_no_session_signs_in_first_and_comes_back(world: SamlWorld) -> None:
    with world.client() as client:
        pkce = Pkce()
        r = client.get("/cli/authorize", params=pkce.params())
        assert r.status_code == 303
        assert r.headers["location"].startswith("/saml/login?")
        assert query_of(r.headers["location"])["next"].startswith("/cli/authorize?")


def test_deny_answers_access_denied(world: SamlWorld) -> None:
    with _signed_in(world) as browser:
        pkce = Pkce()
        answer = authorize(browser, pkce, decision="deny")
        assert answer.status_code == 303
        assert query_of(answer.headers["location"]) == {
            "error": "access_denied",
            "state": pkce.state,
        }


def test_a_code_used_twice_is_refused_and_revokes_its_session(world: SamlWorld) -> None:
    with _signed_in(world) as browser:
        pkce = Pkce()
        code = query_of(authorize(browser, pkce).headers["location"])["code"]
        world.secrets.append(code)
        first = browser.post("/cli/token", data=pkce.token_form(code))
        token = first.json()["access_token"]
        world.secrets.append(token)
        again = browser.post("/cli/token", data=pkce.token_form(code))
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        calls = len(world.standin.calls)
        r = browser.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["code"] == "SessionEnded"
        assert len(world.standin.calls) == calls


def test_another_browser_cannot_use_this_ones_confirm(world: SamlWorld) -> None:
    pkce = Pkce()
    with _signed_in(world) as alice, _signed_in(world, name_id="bob@example.com") as bob:
        page = alice.get("/cli/authorize", params=pkce.params(), headers={"accept": "text/html"})
        form = {**pkce.params(), "csrf": csrf_of(page), "decision": "allow"}
        r = bob.post("/cli/authorize", data=form, headers={"accept": "application/json"})
        assert r.status_code == 403
        assert r.json()["code"] == "CsrfFailed"
        assert "location" not in r.headers
    with world.client() as nobody:
        r = nobody.post("/cli/authorize", data=form, headers={"accept": "application/json"})
        assert r.status_code == 401
        assert r.json()["code"] == "SessionExpired"


def test_another_sites_post_is_refused(world: SamlWorld) -> None:
    with _signed_in(world) as browser:
        pkce = Pkce()
        page = browser.get("/cli/authorize", params=pkce.params(), headers={"accept": "text/html"})
        form = {**pkce.params(), "csrf": csrf_of(page), "decision": "allow"}
        for header in ({"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"}):
            r = browser.post(
                "/cli/authorize", data=form, headers={**header, "accept": "application/json"}
            )
            assert r.status_code == 403, header
            assert r.json()["code"] == "CsrfFailed"


TOKEN_REFUSALS = {
    "wrong verifier": ({"code_verifier": "x" * 43}, "invalid_grant"),
    "wrong redirect": ({"redirect_uri": "http://127.0.0.1:50506/callback"}, "invalid_grant"),
    "another client": ({"client_id": "someone-else"}, "invalid_client"),
    "unknown grant": ({"grant_type": "password"}, "unsupported_grant_type"),
    "no grant": ({"grant_type": ""}, "invalid_request"),
    "no verifier": ({"code_verifier": ""}, "invalid_request"),
    "unknown code": ({"code": "nope"}, "invalid_grant"),
}


@pytest.mark.parametrize("case", TOKEN_REFUSALS.values(), ids=TOKEN_REFUSALS.keys())
def test_token_refusals(world: SamlWorld, case: tuple[dict[str, str], str]) -> None:
    over, error = case
    with _signed_in(world) as browser:
        pkce = Pkce()
        code = query_of(authorize(browser, pkce).headers["location"])["code"]
        world.secrets.append(code)
        r = browser.post("/cli/token", data=pkce.token_form(code, over))
        assert 400 <= r.status_code < 500
        assert r.json()["error"] == error
        assert r.headers["cache-control"] == "no-store"


def test_a_token_request_that_is_not_a_form_is_invalid_request(world: SamlWorld) -> None:
    with world.client() as cli:
        r = cli.post("/cli/token", json={"grant_type": "authorization_code"})
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
        r = cli.post(
            "/cli/token",
            content="grant_type=authorization_code&grant_type=authorization_code&client_id="
            + CLIENT_ID,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


def test_a_role_of_another_user_is_refused_with_nothing_issued(world: SamlWorld) -> None:
    """bob's IdP signed only the reader pair: alice's deployer is not his, whatever he asks."""
    reader_only = [p for p in world.pairs if p.startswith(READER)]
    with _signed_in(world, name_id="bob@example.com", roles=reader_only) as browser:
        token = _login(world, browser)
        r = browser.post("/cli/credentials", json={"role": "deployer"}, headers=bearer(token))
        assert r.status_code == 403
        assert r.json()["code"] == "RoleNotGranted"
        r = browser.post("/cli/console", json={"role": "admin"}, headers=bearer(token))
        assert r.status_code == 403
    assert world.standin.calls == []
    assert world.standin.federation_calls == []


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer bst_made-up", "Bearer not-a-broker-token", "Basic YTpi"],
    ids=["none", "unknown", "foreign", "basic"],
)
def test_no_live_token_no_sts_call(world: SamlWorld, authorization: str) -> None:
    with world.client() as cli:
        headers = {"authorization": authorization, "accept": "application/json"}
        for path in ("/cli/credentials", "/cli/console", "/cli/logout"):
            r = cli.post(path, json={"role": "reader"}, headers=headers)
            assert r.status_code == 401
            assert r.json()["code"] in ("SessionEnded", "MissingToken")
        assert cli.get("/cli/roles", headers=headers).status_code == 401
    assert world.standin.calls == []


def test_logout_revokes_the_token(world: SamlWorld) -> None:
    with _signed_in(world) as browser:
        token = _login(world, browser)
        assert browser.post("/cli/logout", headers=bearer(token)).json() == {"revoked": True}
        r = browser.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
        assert (r.status_code, r.json()["code"]) == (401, "SessionEnded")
    assert world.standin.calls == []


def _device(cli: httpx.Client) -> dict[str, str]:
    r = cli.post("/cli/device", data={"client_id": CLIENT_ID})
    assert r.status_code == 200, r.text
    return {k: str(v) for k, v in r.json().items()}


def test_device_code_approved_in_the_browser(world: SamlWorld) -> None:
    with world.client() as cli, _signed_in(world) as browser:
        grant = _device(cli)
        assert (
            grant["verification_uri"] == world.app.state.runtime.config.server.base_url + "/device"
        )
        assert (grant["expires_in"], grant["interval"]) == ("600", "5")
        user_code = str(grant["user_code"])
        assert len(user_code) == 9
        assert user_code[4] == "-"
        poll = device_form(str(grant["device_code"]))
        assert cli.post("/cli/token", data=poll).json()["error"] == "authorization_pending"
        fast = cli.post("/cli/token", data=poll).json()
        assert (fast["error"], fast["interval"]) == ("slow_down", 10)

        page = browser.get("/device", params={"user_code": user_code.lower()})
        assert user_code in page.text
        assert "alice@example.com" in page.text
        done = browser.post(
            "/device", data={"csrf": csrf_of(page), "user_code": user_code, "decision": "allow"}
        )
        assert done.status_code == 200
        r = cli.post("/cli/token", data=poll)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        world.secrets += [str(grant["device_code"]), token]
        assert cli.get("/cli/roles", headers=bearer(token)).json()["subject"] == "alice@example.com"
        assert cli.post("/cli/token", data=poll).json()["error"] == "invalid_grant"


def _token_decisions(world: SamlWorld) -> tuple[list[dict[str, object]], dict[str, float]]:
    """/cli/token's audit events so far, and the terminal's decisions counted by code."""
    events = [e for e in world.audit() if e.get("event") == "cli-token"]
    registry = world.app.state.runtime.metrics.registry
    counted = {
        code: registry.get_sample_value(
            "broker_decisions_total",
            {"front_door": "terminal", "outcome": outcome, "code": code},
        )
        or 0.0
        for outcome, code in [
            ("granted", "OK"),
            ("refused", "authorization_pending"),
            ("refused", "slow_down"),
            ("refused", "invalid_grant"),
        ]
    }
    return events, counted


def test_device_polls_that_only_say_not_yet_are_not_audited(world: SamlWorld) -> None:
    """RFC 8628 §3.5: a command line polls every few seconds while its person types the code;
    authorization_pending and slow_down decide nothing, so they write no audit event and count
    no decision. The token they end in, and a refusal after it, each write one."""
    with world.client() as cli, _signed_in(world) as browser:
        grant = _device(cli)
        poll = device_form(grant["device_code"])
        events, counted = _token_decisions(world)
        answers = [cli.post("/cli/token", data=poll).json()["error"] for _ in range(3)]
        assert answers == ["authorization_pending", "slow_down", "slow_down"]
        assert _token_decisions(world) == (events, counted)

        page = browser.get("/device", params={"user_code": grant["user_code"]})
        browser.post(
            "/device",
            data={"csrf": csrf_of(page), "user_code": grant["user_code"], "decision": "allow"},
        )
        r = cli.post("/cli/token", data=poll)
        assert r.status_code == 200, r.text
        world.secrets += [grant["device_code"], r.json()["access_token"]]
        spent = cli.post("/cli/token", data=poll).json()
        assert spent["error"] == "invalid_grant"
        after, counted_after = _token_decisions(world)
    new = after[len(events) :]
    assert [(e["outcome"], e["code"]) for e in new] == [
        ("granted", "OK"),
        ("refused", "invalid_grant"),
    ]
    assert new[0]["subject"] == "alice@example.com"
    assert new[1]["error_id"] == spent["error_id"]
    assert {k: counted_after[k] - counted[k] for k in counted} == {
        "OK": 2,  # the approval in the browser (cli-device), then the token
        "authorization_pending": 0,
        "slow_down": 0,
        "invalid_grant": 1,
    }


def test_device_code_denied(world: SamlWorld) -> None:
    with world.client() as cli, _signed_in(world) as browser:
        grant = _device(cli)
        page = browser.get("/device", params={"user_code": grant["user_code"]})
        browser.post(
            "/device",
            data={"csrf": csrf_of(page), "user_code": grant["user_code"], "decision": "deny"},
        )
        r = cli.post("/cli/token", data=device_form(str(grant["device_code"])))
        assert (r.status_code, r.json()["error"]) == (400, "access_denied")


def test_the_device_page_needs_a_session_and_limits_wrong_codes(world: SamlWorld) -> None:
    with world.client() as nobody:
        r = nobody.get("/device", params={"user_code": "BCDF-GHJK"})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/saml/login?")
    with world.client() as cli, _signed_in(world) as browser:
        grant = _device(cli)
        for _ in range(5):
            wrong = browser.get("/device", params={"user_code": "BCDF-GHJK"})
            assert wrong.status_code == 400
            assert "unknown or has expired" in wrong.text
        r = browser.get("/device", params={"user_code": grant["user_code"]})
        assert r.status_code == 429
        r = browser.get(
            "/device",
            params={"user_code": grant["user_code"]},
            headers={"accept": "application/json"},
        )
        assert r.json()["code"] == "TooManyAttempts"
    with _signed_in(world) as other:  # another browser session has its own count
        assert other.get("/device", params={"user_code": grant["user_code"]}).status_code == 200


@pytest.fixture
def short_window(tmp_path: Path) -> Iterator[SamlWorld]:
    standin = AwsStandIn(saml_redemption_seconds=WINDOW)
    with saml_world(tmp_path, standin=standin, aws={"saml_redemption_seconds": WINDOW}) as w:
        yield w


def test_pass_through_past_the_window_says_run_broker_login(short_window: SamlWorld) -> None:
    world = short_window
    with _signed_in(world) as browser:
        token = _login(world, browser)
        waiting = Pkce()
        page = browser.get(
            "/cli/authorize", params=waiting.params(), headers={"accept": "text/html"}
        )
        time.sleep(WINDOW)
        late = browser.post(
            "/cli/authorize", data={**waiting.params(), "csrf": csrf_of(page), "decision": "allow"}
        )
        assert late.status_code == 303
        assert late.headers["location"].startswith("/saml/login?"), "no code for a stale sign-in"
        r = browser.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["code"] == "ReauthenticationRequired"
        assert (
            f"broker login --url {world.app.state.runtime.config.server.base_url}"
            in r.json()["detail"]
        )
        # The browser's own sign-in is as old: a new `broker login` goes through the IdP first.
        again = browser.get("/cli/authorize", params=Pkce().params())
        assert again.status_code == 303
        assert again.headers["location"].startswith("/saml/login?")
    assert world.sts_calls() == []


@pytest.fixture
def issuer_mode(tmp_path: Path) -> Iterator[SamlWorld]:
    standin = AwsStandIn(saml_redemption_seconds=WINDOW)
    keys = signing_keys(tmp_path / "keys", "broker")
    with saml_world(
        tmp_path,
        standin=standin,
        aws={"saml_redemption_seconds": WINDOW},
        issuer=issuer_section(keys),
    ) as w:
        yield w


def test_issuer_mode_sessions_outlive_the_window(issuer_mode: SamlWorld) -> None:
    world = issuer_mode
    with _signed_in(world) as browser:
        token = _login(world, browser)
        expires_in = browser.get("/cli/roles", headers=bearer(token)).json()["expires_at"]
        assert expires_in
        time.sleep(WINDOW)
        r = browser.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
        assert r.status_code == 200, r.text
        world.secrets += [r.json()["SecretAccessKey"], r.json()["SessionToken"]]
    [call] = world.sts_calls()
    assert call.outcome == "ok"
    assert call.principal_arn.endswith(":saml-provider/broker")


@dataclass(frozen=True)
class Expiry:
    """How the broker's clock moves past a code's 60 s and the session's end, and what the
    refusals then say (which layer refused)."""

    name: str
    move: Callable[[AheadClock, float], None]
    code_said: str  # the error_description of /cli/token's invalid_grant
    session_logged: str  # SessionEnded's log_detail


EXPIRIES = [
    # The store's own TTLs have run out: the code and the token are gone from it.
    Expiry("store forgot them", AheadClock.advance, "unknown or has expired", "unknown or revoked"),
    # The store still holds both (a TTL rounded up, a Redis a little behind): the expiry each
    # record keeps refuses them on its own.
    Expiry(
        "store still holds them", AheadClock.advance_wall, "The code has expired", "expired session"
    ),
]


@pytest.mark.parametrize("case", EXPIRIES, ids=attrgetter("name"))
def test_after_expiry_codes_and_tokens_are_refused_with_no_sts_call(
    tmp_path: Path, case: Expiry
) -> None:
    """Sessions of the shortest length the broker allows (60 s), as long as a code lives; the
    broker's clock is moved 61 s ahead rather than waited for."""
    clock = AheadClock()
    with saml_world(tmp_path, session_max_seconds=60, clock=clock) as world:
        with _signed_in(world) as browser:
            token = _login(world, browser)
            pkce = Pkce()
            code = query_of(authorize(browser, pkce).headers["location"])["code"]
            world.secrets.append(code)
            assert browser.get("/cli/roles", headers=bearer(token)).status_code == 200
            case.move(clock, 61)
            late = browser.post("/cli/token", data=pkce.token_form(code))
            assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")
            assert case.code_said in late.json()["error_description"]
            r = browser.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
            assert (r.status_code, r.json()["code"]) == (401, "SessionEnded")
            error_id = r.json()["error_id"]
            logged = [line for line in world.logs.lines if error_id in line]
            assert any(case.session_logged in line for line in logged), logged
        assert world.standin.calls == []


def test_roles_used_from_the_terminal_are_recent_on_the_picker(world: SamlWorld) -> None:
    with _signed_in(world) as browser:
        token = _login(world, browser)
        with httpx.Client(base_url=world.url) as cli:
            creds = cli.post("/cli/credentials", json={"role": "reader"}, headers=bearer(token))
            assert creds.status_code == 200, creds.text
            world.secrets += [creds.json()["SecretAccessKey"], creds.json()["SessionToken"]]
            console = cli.post("/cli/console", json={"role": "deployer"}, headers=bearer(token))
            assert console.status_code == 200, console.text
        picker = browser.get("/", headers={"accept": "text/html"})
    recent = picker.text.split('id="recent"', 1)[1].split("</section>", 1)[0]
    # Newest first: the console, then the credentials.
    assert recent.index(f'data-arn="{DEPLOYER}"') < recent.index(f'data-arn="{READER}"')
