"""Error pages name the next step for their code, with a button where there is one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter

import httpx
import pytest

from tests.fakes.saml_world import SamlWorld, saml_world

pytestmark = pytest.mark.peers
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("error-pages")) as w:
        yield w


@dataclass(frozen=True)
class Case:
    name: str
    code: str
    step: str
    button: str | None
    request: Callable[[SamlWorld, httpx.Client], httpx.Response]


def _role_not_granted(world: SamlWorld, client: httpx.Client) -> httpx.Response:
    data = {"csrf": world.csrf(client), "role": "nobody-has-this"}
    return client.post("/console", data=data, headers=HTML)


CASES = [
    Case("role not granted", "RoleNotGranted", "Choose one of the roles", "/", _role_not_granted),
    Case(
        "bad deep link",
        "RedirectNotAllowed",
        "open a role here",
        "/",
        lambda w, c: c.get("/console?destination=no-such-service", headers=HTML),
    ),
    Case("no page here", "NotFound", "Nothing is at", "/", lambda w, c: c.get("/no", headers=HTML)),
]


@pytest.mark.parametrize("case", CASES, ids=attrgetter("name"))
def test_error_page_names_the_next_step(world: SamlWorld, case: Case) -> None:
    with world.client() as client:
        world.sign_in(client)
        response = case.request(world, client)
    assert f'<code id="error-code">{case.code}</code>' in response.text
    assert case.step in response.text
    assert f'id="next-step-button" href="{case.button}"' in response.text
    assert 'id="sign-in-again"' not in response.text


def test_a_refusal_a_new_sign_in_cures_offers_only_that(world: SamlWorld) -> None:
    with world.client() as client:
        response = client.post("/cli-credentials", data={"role": "admin"}, headers=HTML)
    assert '<code id="error-code">SessionExpired</code>' in response.text
    assert 'id="sign-in-again"' in response.text
    assert 'id="next-step' not in response.text


def test_programs_get_no_next_step(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        problem = client.post(
            "/console", data={"csrf": world.csrf(client), "role": "nobody-has-this"}
        ).json()
    assert problem["code"] == "RoleNotGranted"
    assert "next_step" not in problem
