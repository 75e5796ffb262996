"""Bad inputs at the HTTP level: each is refused with its specific code, and STS is never called."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import httpx
import pytest

from broker.errors import UnknownSigningKey
from broker.mapping import map_roles
from broker.saml.explain import saml_identity
from tests.fakes.saml_world import (
    ANALYTICS,
    DEPLOYER,
    IDP_ENTITY,
    SamlWorld,
    saml_world,
    world_config,
)

pytestmark = pytest.mark.peers

Send = Callable[[SamlWorld, httpx.Client], httpx.Response]


@dataclass(frozen=True)
class Case:
    name: str
    send: Send
    status: int
    code: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("saml-routes")) as w:
        yield w


def _signed_in(w: SamlWorld, c: httpx.Client) -> str:
    assert w.sign_in(c).status_code == 303
    return w.csrf(c)


def _console(**fields: str) -> Send:
    def send(w: SamlWorld, c: httpx.Client) -> httpx.Response:
        csrf = _signed_in(w, c)
        data = {"csrf": csrf, "role": "reader", **fields}
        return c.post("/console", data={k: v for k, v in data.items() if v != "<omit>"})

    return send


def _replay(w: SamlWorld, c: httpx.Client) -> httpx.Response:
    saml = w.response()
    assert c.post("/saml/acs", data={"SAMLResponse": saml}).status_code == 303
    with w.client() as other:  # another browser, same assertion
        return other.post("/saml/acs", data={"SAMLResponse": saml})


def _oversized(w: SamlWorld, c: httpx.Client) -> httpx.Response:
    return c.post("/saml/acs", data={"SAMLResponse": "A" * (300 * 1024)})


def _oversized_chunked(w: SamlWorld, c: httpx.Client) -> httpx.Response:
    def body() -> Iterator[bytes]:
        yield b"SAMLResponse="
        for _ in range(40):
            yield b"A" * 8192

    return c.post(
        "/saml/acs",
        content=body(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


CASES = [
    Case("picker-role-not-granted", _console(role="auditor"), 403, "RoleNotGranted"),
    Case(
        "picker-role-arn-of-another-account",
        _console(role=f"arn:aws:iam::{ANALYTICS}:role/admin"),
        403,
        "RoleNotGranted",
    ),
    Case("picker-no-csrf", _console(csrf="<omit>"), 403, "CsrfFailed"),
    Case("picker-wrong-csrf", _console(csrf="x" * 43), 403, "CsrfFailed"),
    Case("picker-no-role", _console(role=""), 400, "InvalidParameter"),
    Case(
        "destination-other-host",
        _console(destination="https://evil.example.com/"),
        403,
        "RedirectNotAllowed",
    ),
    Case(
        "destination-lookalike-host",
        _console(destination="https://console.aws.amazon.com.evil.example/"),
        403,
        "RedirectNotAllowed",
    ),
    Case(
        "destination-protocol-relative",
        _console(destination="//evil.example.com/x"),
        403,
        "RedirectNotAllowed",
    ),
    Case(
        "destination-userinfo",
        _console(destination="https://console.aws.amazon.com@evil.example.com/"),
        403,
        "RedirectNotAllowed",
    ),
    Case(
        "destination-http",
        _console(destination="http://console.aws.amazon.com/"),
        403,
        "RedirectNotAllowed",
    ),
    Case(
        "destination-javascript",
        _console(destination="javascript:alert(1)"),
        403,
        "RedirectNotAllowed",
    ),
    Case(
        "destination-other-partition",
        _console(destination="https://console.amazonaws.cn/"),
        403,
        "RedirectNotAllowed",
    ),
    Case("region-injection", _console(region="us-east-1&x=1"), 400, "InvalidParameter"),
    Case(
        "console-without-session",
        lambda w, c: c.post("/console", data={"csrf": "x", "role": "reader"}),
        401,
        "SessionExpired",
    ),
    Case(
        "deep-link-off-allow-list",
        lambda w, c: c.get(
            "/console", params={"role": "reader", "destination": "https://evil.example/"}
        ),
        403,
        "RedirectNotAllowed",
    ),
    Case("acs-oversized-body", _oversized, 413, "RequestTooLarge"),
    Case("acs-oversized-chunked-body", _oversized_chunked, 413, "RequestTooLarge"),
    Case(
        "acs-non-base64",
        lambda w, c: c.post("/saml/acs", data={"SAMLResponse": "not base64!*"}),
        400,
        "MalformedRequest",
    ),
    Case(
        "acs-missing-response", lambda w, c: c.post("/saml/acs", data={}), 400, "MalformedRequest"
    ),
    Case(
        "acs-json-body",
        lambda w, c: c.post("/saml/acs", json={"SAMLResponse": w.response()}),
        400,
        "MalformedRequest",
    ),
    Case("acs-replay", _replay, 401, "ReplayDetected"),
    Case(
        "acs-wrong-signer",
        lambda w, c: w.sign_in(c, signer=w.idp.other_key),
        401,
        "UnknownSigningKey",
    ),
    Case(
        "login-next-absolute-url",
        lambda w, c: c.get("/saml/login", params={"next": "https://evil.example/"}),
        400,
        "InvalidParameter",
    ),
    Case(
        "login-next-protocol-relative",
        lambda w, c: c.get("/saml/login", params={"next": "//evil.example/"}),
        400,
        "InvalidParameter",
    ),
    Case(
        "login-unknown-idp",
        lambda w, c: c.get("/saml/login", params={"idp": "nope", "next": "/"}),
        404,
        "NotFound",
    ),
    Case(
        "v1-non-base64",
        lambda w, c: c.post("/v1/saml/credentials", json={"SAMLResponse": "%%%"}),
        400,
        "MalformedRequest",
    ),
    Case(
        "v1-role-not-granted",
        lambda w, c: c.post(
            "/v1/saml/credentials", json={"SAMLResponse": w.response(), "role": "auditor"}
        ),
        403,
        "RoleNotGranted",
    ),
    Case(
        "logout-without-csrf",
        lambda w, c: (_signed_in(w, c), c.post("/logout", data={}))[1],
        403,
        "CsrfFailed",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=attrgetter("name"))
def test_bad_input_is_refused_without_sts(world: SamlWorld, case: Case) -> None:
    world.standin.reset()
    with world.client() as client:
        r = case.send(world, client)
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == case.code
    assert world.standin.calls == []
    assert world.standin.federation_calls == []


def test_browser_gets_an_error_page(world: SamlWorld) -> None:
    with world.client() as client:
        r = client.post(
            "/saml/acs", data={"SAMLResponse": "not base64!*"}, headers={"accept": "text/html"}
        )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="error-code">MalformedRequest' in r.text


def test_refusals_are_audited(world: SamlWorld) -> None:
    with world.client() as client:
        _console(role="auditor")(world, client)
    events = [e for e in world.audit() if e["event"] == "console"]
    assert events[-1]["outcome"] == "refused"
    assert events[-1]["code"] == "RoleNotGranted"


def test_explain_reads_a_saved_response_without_replay_or_in_response_to(
    world: SamlWorld, tmp_path: Path
) -> None:
    saml = world.response(in_response_to="_a-request-this-process-never-sent")
    path = tmp_path / "response.b64"
    path.write_text(saml)
    config = world_config(world.idp, world.standin_url, tmp_path / "a.jsonl", IDP_ENTITY + "/sso")
    first = saml_identity(config, str(path))
    again = saml_identity(config, str(path))  # no replay cache across explain runs
    assert first.subject == again.subject == "alice@example.com"
    assert DEPLOYER in [g.arn for g in map_roles(first, config).grants]


def test_explain_still_checks_the_signature(world: SamlWorld, tmp_path: Path) -> None:
    path = tmp_path / "response.b64"
    path.write_text(world.response(signer=world.idp.other_key))
    config = world_config(world.idp, world.standin_url, tmp_path / "a.jsonl", IDP_ENTITY + "/sso")
    with pytest.raises(UnknownSigningKey):
        saml_identity(config, str(path))
