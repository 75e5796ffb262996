"""Every bad SAML input of the verifier's table, sent over HTTP to both SAML front doors:
refused with its code, and — the property that matters — no STS and no federation call."""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter

import pytest

from tests.fakes.saml_cases import CASES, Case, build
from tests.fakes.saml_edits import SCD, set_attr
from tests.fakes.saml_world import ADMIN, BASE_URL, SamlWorld, saml_world

pytestmark = pytest.mark.peers

# Cases that need another IdP configuration or a shifted clock run at the verifier level only;
# the one built around the verifier test's own ACS URL is rebuilt around this broker's.
HTTP_CASES = [
    c for c in CASES if not c.config and not c.shift and c.name != "recipient_only_contains_ours"
] + [
    Case(
        "recipient_only_contains_ours",
        "InvalidRecipient",
        "not our ACS URL",
        {
            "before_sign": set_attr(
                SCD, "Recipient", f"https://evil.example.test/?next={BASE_URL}/saml/acs"
            )
        },
    )
]

# The ACS knows which requests this browser started (its pending-login cookie): an answer to
# any other is refused as not started here; the CLI door has no browser to ask.
ACS_CODES = {("unknown_in_response_to", "/saml/acs"): "SignInNotStartedHere"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("saml-refusals")) as w:
        yield w


@pytest.mark.parametrize("door", ["/saml/acs", "/v1/saml/credentials"])
@pytest.mark.parametrize("case", HTTP_CASES, ids=attrgetter("name"))
def test_refused_over_http_without_sts(world: SamlWorld, case: Case, door: str) -> None:
    world.standin.reset()
    form_value = build(world.idp, case)
    world.secrets.append(form_value)
    with world.client() as client:
        r = client.post(
            door, data={"SAMLResponse": form_value}, headers={"accept": "application/json"}
        )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == ACS_CODES.get((case.name, door), case.code)
    assert "set-cookie" not in r.headers
    assert world.standin.calls == [], "a refused assertion must never reach STS"
    assert world.standin.federation_calls == []


def test_the_table_is_exercised() -> None:
    assert len(HTTP_CASES) >= 40


def test_a_deny_rule_wins_over_the_signed_roles(world: SamlWorld) -> None:
    world.standin.reset()
    with world.client() as client:
        r = client.post(
            "/v1/saml/credentials",
            data={"SAMLResponse": world.response(attributes={"groups": ["contractors"]})},
            headers={"accept": "application/json"},
        )
    assert r.status_code == 403
    problem = r.json()
    assert problem["code"] == "NoRoleGranted"
    denied = {
        x["role"] for x in problem["refused"] if x["reason"] == "denied by rule no-contractors"
    }
    assert denied == {pair.split(",")[0] for pair in world.pairs}
    assert world.standin.calls == []


def test_a_role_denied_by_a_rule_cannot_be_picked(world: SamlWorld) -> None:
    world.standin.reset()
    with world.client() as client:
        r = client.post(
            "/v1/saml/credentials",
            data={
                "SAMLResponse": world.response(attributes={"groups": ["interns"]}),
                "role": ADMIN,
            },
            headers={"accept": "application/json"},
        )
        assert r.status_code == 403
        assert r.json()["code"] == "RoleNotGranted"
        assert "denied by rule no-admin-for-interns" in r.json()["detail"]
        assert world.standin.calls == []
        # In the browser too: the picker does not offer it, and a forged form is refused.
        signed_in = world.sign_in(client, attributes={"groups": ["interns"]})
        assert signed_in.status_code == 303
        page = client.get("/", headers={"accept": "text/html"})
        assert ">admin<" not in page.text
        forged = client.post(
            "/console",
            data={"role": ADMIN, "csrf": world.csrf(client)},
            headers={"accept": "application/json"},
        )
        assert forged.status_code == 403
        assert world.standin.calls == []
