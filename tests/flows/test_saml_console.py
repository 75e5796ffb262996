"""The employee's path end to end: pysaml2-signed Response → /saml/acs → picker → console."""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.saml_idp import AWS
from tests.fakes.saml_world import (
    BASE_URL,
    DEPLOYER,
    IDP_ENTITY,
    PROD,
    READER,
    SamlWorld,
    saml_world,
)

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("saml-flow")) as w:
        yield w


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "world" in request.fixturenames:
        request.getfixturevalue("world").standin.reset()


def _cookie_header(response: httpx.Response) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie")


def test_acs_opens_a_session_cookie_and_picker(world: SamlWorld) -> None:
    with world.client() as client:
        r = world.sign_in(client)
        assert r.status_code == 303
        assert r.headers["location"] == "/"
        cookie = _cookie_header(r).lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "secure" not in cookie
        assert world.secrets[-1][:40] not in _cookie_header(r)  # the assertion is not the cookie
        page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    # Accounts by their configured names, roles by name, the filter box.
    for text in ("Production", "Analytics", PROD, "deployer", "admin", "reader", 'id="filter"'):
        assert text in page.text
    assert "auditor" not in page.text  # granted by a rule but not signed: STS would refuse
    assert world.sts_calls() == []  # signing in calls no STS


def test_console_click_signs_in_to_the_console_as_that_role(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client, attributes={AWS + "SessionDuration": ["1800"]})
        csrf = world.csrf(client)
        r = client.post(
            "/console",
            data={"csrf": csrf, "role": "reader", "destination": "s3", "region": "eu-west-1"},
        )
        assert r.status_code == 303, r.text
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "no-referrer"
        location = r.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert location.startswith(world.standin_url + "/federation?")
        assert query["Action"] == ["login"]
        assert query["Issuer"] == [BASE_URL]
        assert query["Destination"] == ["https://console.aws.amazon.com/s3/home?region=eu-west-1"]
        console = world.follow_to_console(location)
        # The picker remembers the last role, first among the recent ones.
        again = client.get("/", headers={"accept": "text/html"})
    assert console.status_code == 200, console.text
    assert "assumed-role/reader/" in console.text
    assert 'id="caller-arn">arn:aws:sts::444455556666:assumed-role/reader/' in console.text
    [sts] = world.sts_calls()
    assert sts.role_arn == READER
    assert sts.outcome == "ok"
    [token, login] = world.standin.federation_calls
    # min(SessionDuration 1800, SessionNotOnOrAfter, role max 43200, 43200)
    assert token.action == "getSigninToken"
    assert token.session_duration == 1800
    assert login.outcome == "ok"
    assert login.destination is not None
    assert login.destination.endswith("s3/home?region=eu-west-1")
    assert "last used" in again.text
    recent = again.text.split('id="recent"', 1)[1].split("</section>", 1)[0]
    assert 'data-arn="arn:aws:iam::444455556666:role/reader"' in recent
    # No line, at any level and from any library, names the getSigninToken request: its query
    # carries the session's credentials (the world also looks for the SigninToken on exit).
    assert not [line for line in world.logs.lines if "/federation?" in line or "sessionKey" in line]
    events = [e for e in world.audit() if e["event"] == "console"]
    assert events[-1]["outcome"] == "granted"
    assert events[-1]["role"] == READER


def test_second_role_without_signing_in_again(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        csrf = world.csrf(client)
        first = client.post("/console", data={"csrf": csrf, "role": "deployer"})
        second = client.post("/console", data={"csrf": csrf, "role": READER})
    assert first.status_code == second.status_code == 303
    assert [c.role_arn for c in world.sts_calls()] == [DEPLOYER, READER]
    for r in (first, second):
        assert world.follow_to_console(r.headers["location"]).status_code == 200
    # Role max (deployer 7200) bounds the console session.
    assert world.standin.federation_calls[0].session_duration == 7200


def test_one_role_goes_straight_to_the_console(world: SamlWorld) -> None:
    with world.client() as client:
        r = world.sign_in(client, roles=[world.pairs[0]])
        assert r.status_code == 303
        assert r.headers["location"] == "/console?role=deployer"
        r = client.get(r.headers["location"])
        assert r.status_code == 303
    console = world.follow_to_console(r.headers["location"])
    assert "assumed-role/deployer/" in console.text


def test_deep_link_without_a_session_goes_through_sp_initiated_login(world: SamlWorld) -> None:
    with world.client() as client:
        r = client.get(
            "/console", params={"role": "admin", "destination": "ec2", "region": "us-west-2"}
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith("/saml/login?")
        r = client.get(r.headers["location"])
        assert r.status_code == 303
        sso = urlsplit(r.headers["location"])
        assert f"{sso.scheme}://{sso.netloc}{sso.path}" == IDP_ENTITY + "/sso"
        query = parse_qs(sso.query)
        assert "RelayState" not in query, "next stays in this browser's pending-login cookie"
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        found = re.search(rb'ID="([^"]+)"', xml)
        assert found is not None
        request_id = found.group(1).decode()
        saml = world.response(in_response_to=request_id)
        r = client.post("/saml/acs", data={"SAMLResponse": saml})
        assert r.status_code == 303
        assert r.headers["location"] == "/console?role=admin&destination=ec2&region=us-west-2"
        r = client.get(r.headers["location"])
        assert r.status_code == 303
    console = world.follow_to_console(r.headers["location"])
    assert "assumed-role/admin/" in console.text
    assert "https://console.aws.amazon.com/ec2/home?region=us-west-2" in console.text


def test_command_line_credentials(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        csrf = world.csrf(client)
        page = client.post(
            "/cli-credentials",
            data={"csrf": csrf, "role": "admin"},
            headers={"accept": "text/html"},
        )
        data = client.post(
            "/cli-credentials",
            data={"csrf": csrf, "role": "reader"},
            headers={"accept": "application/json"},
        ).json()
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "export AWS_ACCESS_KEY_ID=" in page.text
    assert "credential_process" in page.text
    process = json.loads(data["credential_process_json"])
    world.secrets += [process["SecretAccessKey"], process["SessionToken"]]
    assert process["Version"] == 1
    assert data["role_arn"] == READER
    assert f"export AWS_SESSION_TOKEN={process['SessionToken']}" in data["env"]


def test_v1_saml_credentials_for_a_cli(world: SamlWorld) -> None:
    with world.client() as client:
        saml = world.response()
        r = client.post("/v1/saml/credentials", json={"SAMLResponse": saml, "role": "deployer"})
        again = client.post("/v1/saml/credentials", json={"SAMLResponse": saml, "role": "reader"})
    assert r.status_code == 200, r.text
    body = r.json()
    world.secrets += [body["Credentials"]["SecretAccessKey"], body["Credentials"]["SessionToken"]]
    assert body["RoleArn"] == DEPLOYER
    assert again.status_code == 401
    assert again.json()["code"] == "ReplayDetected"
    assert len(world.sts_calls()) == 1


def test_logout_ends_the_session(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        csrf = world.csrf(client)
        assert client.post("/logout", data={"csrf": csrf}).status_code == 200
        r = client.post("/console", data={"csrf": csrf, "role": "reader"})
    assert r.status_code == 401
    assert r.json()["code"] == "SessionExpired"
    assert world.sts_calls() == []


def test_metadata(world: SamlWorld) -> None:
    with world.client() as client:
        r = client.get("/saml/metadata")
    assert r.status_code == 200
    assert 'entityID="http://127.0.0.1:8080/saml/metadata"' in r.text
    assert 'Location="http://127.0.0.1:8080/saml/acs"' in r.text
