"""The employee's path end to end: pysaml2-signed Response → /saml/acs → picker → console."""

from __future__ import annotations

import base64
import json
import logging
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from broker.app import create_app
from broker.config import Config, parse_config
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.servers import serve_app
from tests.flows.harness import LogCapture
from tests.saml.idp import AWS, TestIdp

PROD, ANALYTICS = "111122223333", "444455556666"
DEPLOYER = f"arn:aws:iam::{PROD}:role/deployer"
ADMIN = f"arn:aws:iam::{PROD}:role/admin"
READER = f"arn:aws:iam::{ANALYTICS}:role/reader"
AUDITOR = f"arn:aws:iam::{ANALYTICS}:role/auditor"  # granted by a rule, never signed
BASE_URL = "http://127.0.0.1:8080"
IDP_ENTITY = "https://idp.example.test/saml"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def world_config(
    idp: TestIdp, standin_url: str, audit: Path, sso_url: str, **server: Any
) -> Config:
    return parse_config(
        {
            "server": {"base_url": BASE_URL, **server},
            "aws": {
                "sts_endpoint": standin_url + "/",
                "federation_endpoint": standin_url + "/federation",
                "sts_max_attempts": 1,
            },
            "audit": {"path": str(audit)},
            "identity_providers": {
                "corp": {
                    "type": "saml",
                    "entity_id": IDP_ENTITY,
                    "sso_url": sso_url,
                    "certificates": [idp.key.cert_pem],
                }
            },
            "accounts": {PROD: {"name": "Production"}, ANALYTICS: {"name": "Analytics"}},
            "roles": {
                "deployer": {"arn": DEPLOYER, "max_session_seconds": 7200},
                "admin": {"arn": ADMIN, "description": "Full access"},
                "reader": {"arn": READER, "max_session_seconds": 43200},
                "auditor": {"arn": AUDITOR},
            },
            "rules": [
                {"name": "auditors", "idp": "corp", "grant": ["auditor"]},
                {
                    "name": "no-contractors",
                    "idp": "corp",
                    "when": {"claim": "groups", "contains": "contractors"},
                    "deny": ["*"],
                },
                {
                    "name": "no-admin-for-interns",
                    "idp": "corp",
                    "when": {"claim": "groups", "contains": "interns"},
                    "deny": ["admin"],
                },
            ],
        }
    )


class BrokerLogs(LogCapture):
    """Every record but the test's own HTTP clients (the "browser", on the main thread): those
    log the URLs the browser follows, which do carry sign-in tokens by design."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")) and record.threadName == "MainThread":
            return
        super().emit(record)


@dataclass
class SamlWorld:
    url: str
    idp: TestIdp
    standin: AwsStandIn
    standin_url: str
    logs: BrokerLogs
    audit_path: Path
    pairs: list[str]
    secrets: list[str] = field(default_factory=list)

    def response(self, **kwargs: Any) -> str:
        kwargs.setdefault("roles", self.pairs)
        b64 = self.idp.b64(**kwargs)
        self.secrets.append(b64)
        return b64

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=20)

    def sign_in(self, client: httpx.Client, **kwargs: Any) -> httpx.Response:
        return client.post("/saml/acs", data={"SAMLResponse": self.response(**kwargs)})

    def csrf(self, client: httpx.Client) -> str:
        page = client.get("/", headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found is not None
        return found.group(1)

    def sts_calls(self) -> list[Any]:
        return [c for c in self.standin.calls if c.action == "AssumeRoleWithSAML"]

    def audit(self) -> list[dict[str, Any]]:
        text = self.audit_path.read_text() if self.audit_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def follow_to_console(self, location: str) -> httpx.Response:
        """Play the browser: the federation login URL, then the stand-in's console."""
        self.secrets.extend(parse_qs(urlsplit(location).query).get("SigninToken", []))
        with httpx.Client(follow_redirects=True, timeout=20) as browser:
            return browser.get(location)


@contextmanager
def saml_world(
    tmp: Path, *, sso_url: str = IDP_ENTITY + "/sso", **server: Any
) -> Iterator[SamlWorld]:
    """A broker (uvicorn) with one SAML IdP (pysaml2) and the AWS stand-in; logs captured at
    DEBUG and checked on the way out: no assertion, credential or sign-in token in any line."""
    idp = TestIdp(tmp / "idp", acs_url=BASE_URL + "/saml/acs", entity_id=IDP_ENTITY)
    standin = AwsStandIn()
    capture = BrokerLogs()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        with serve(standin) as standin_url:
            prod = standin.register_saml_provider("corp", [idp.key.cert_pem], PROD)
            analytics = standin.register_saml_provider("corp", [idp.key.cert_pem], ANALYTICS)
            pairs = [f"{DEPLOYER},{prod}", f"{ADMIN},{prod}", f"{READER},{analytics}"]
            config = world_config(idp, standin_url, tmp / "audit.jsonl", sso_url, **server)
            app = create_app(config)
            with serve_app(app) as url:
                world = SamlWorld(
                    url, idp, standin, standin_url, capture, tmp / "audit.jsonl", pairs
                )
                yield world
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    text = "\n".join(capture.lines) + (
        world.audit_path.read_text() if world.audit_path.exists() else ""
    )
    assert world.secrets, "the tests should have produced secrets to look for"
    leaked = [s for s in world.secrets if s in text]
    assert not leaked, f"{len(leaked)} secret(s) reached a log line or audit event"


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
        # The picker remembers the last role.
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
    assert login.destination.endswith("s3/home?region=eu-west-1")
    assert "last used" in again.text
    # httpx logged the broker's getSigninToken request, without its query (the credentials).
    assert any("/federation?[redacted]" in line for line in world.logs.lines)
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
        relay = query["RelayState"][0]
        assert "/" not in relay
        assert "console" not in relay
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        request_id = re.search(rb'ID="([^"]+)"', xml).group(1).decode()  # type: ignore[union-attr]
        saml = world.response(in_response_to=request_id)
        r = client.post("/saml/acs", data={"SAMLResponse": saml, "RelayState": relay})
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
