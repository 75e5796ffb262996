"""POST /favourites over HTTP: a star is kept only for a role the rules grant, on a form this
site posted with its token; every refusal has a stable code and stores nothing."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter

import httpx
import pytest

from broker.errors import StoreUnavailable
from broker.store import MemoryStore
from tests.fakes.saml_world import ADMIN, AUDITOR, READER, SamlWorld, saml_world

pytestmark = pytest.mark.peers
HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("favourites")) as w:
        yield w


def _store(world: SamlWorld) -> MemoryStore:
    store = world.app.state.runtime.store
    assert isinstance(store, MemoryStore)
    return store


def _kept(world: SamlWorld) -> list[str]:
    """Every picker memory in the store (sealed: only their keys can be listed)."""
    return [k for k in _store(world)._data if k.startswith("picks:")]


def _signed_in(world: SamlWorld, client: httpx.Client, **kwargs: object) -> str:
    """Signed in as a person of their own (memories are per person); their CSRF token."""
    name_id = f"fav-{secrets.token_hex(4)}@example.com"
    assert world.sign_in(client, name_id=name_id, **kwargs).status_code == 303
    return world.csrf(client)


def _section(page: str, section: str) -> str:
    found = re.search(rf'<section class="quick" id="{section}".*?</section>', page, re.S)
    return found.group(0) if found else ""


def test_a_star_shows_the_role_under_favourites(world: SamlWorld) -> None:
    with world.client() as client:
        csrf = _signed_in(world, client)
        r = client.post(
            "/favourites",
            data={"csrf": csrf, "role": READER, "star": "on", "region": "eu-west-1"},
            headers=HTML,
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/?region=eu-west-1"
        page = client.get("/", headers=HTML).text
        favourites = _section(page, "favourites")
        assert f'data-arn="{READER}"' in favourites
        assert 'aria-pressed="true"' in favourites
        assert "hidden" not in favourites.split(">", 1)[0]
        # A script asks for JSON; a repeated post changes nothing; `off` unstars.
        again = client.post(
            "/favourites", data={"csrf": csrf, "role": "reader", "star": "on"}, headers=JSON
        )
        assert again.json() == {"role": "reader", "arn": READER, "favourite": True}
        off = client.post(
            "/favourites", data={"csrf": csrf, "role": READER, "star": "off"}, headers=JSON
        )
        assert off.json()["favourite"] is False
        page = client.get("/", headers=HTML).text
    assert f'data-arn="{READER}"' not in _section(page, "favourites")
    events = [e for e in world.audit() if e["event"] == "favourite"]
    assert [e["outcome"] for e in events[-3:]] == ["granted"] * 3
    assert world.sts_calls() == [], "a star mints nothing"


def test_a_role_no_longer_granted_disappears_silently(world: SamlWorld) -> None:
    """Interns lose admin (a deny rule): their star stays in the record, not on the page."""
    name_id = f"fav-{secrets.token_hex(4)}@example.com"
    with world.client() as client:
        assert world.sign_in(client, name_id=name_id).status_code == 303
        csrf = world.csrf(client)
        r = client.post("/favourites", data={"csrf": csrf, "role": ADMIN, "star": "on"})
        assert r.status_code == 303, r.text
    with world.client() as client:
        interns = {"groups": ["interns"]}
        assert world.sign_in(client, name_id=name_id, attributes=interns).status_code == 303
        page = client.get("/", headers=HTML)
    assert page.status_code == 200
    assert ADMIN not in page.text
    assert 'id="favourites" aria-labelledby="favourites-title" hidden' in page.text


@dataclass(frozen=True)
class Refusal:
    name: str
    fields: dict[str, str]
    status: int
    code: str


REFUSALS = [
    Refusal("not-granted-name", {"role": "auditor", "star": "on"}, 403, "RoleNotGranted"),
    Refusal("not-granted-arn", {"role": AUDITOR, "star": "on"}, 403, "RoleNotGranted"),
    Refusal(
        "unknown-role",
        {"role": "arn:aws:iam::999999999999:role/x", "star": "on"},
        403,
        "RoleNotGranted",
    ),
    Refusal("no-role", {"star": "on"}, 400, "InvalidParameter"),
    Refusal("bad-star", {"role": READER, "star": "yes"}, 400, "InvalidParameter"),
    Refusal("no-csrf", {"role": READER, "star": "on", "csrf": ""}, 403, "CsrfFailed"),
    Refusal("wrong-csrf", {"role": READER, "star": "on", "csrf": "forged"}, 403, "CsrfFailed"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=attrgetter("name"))
def test_refusals_have_a_stable_code_and_store_nothing(world: SamlWorld, case: Refusal) -> None:
    with world.client() as client:
        csrf = _signed_in(world, client)
        before = _kept(world)
        r = client.post("/favourites", data={"csrf": csrf, **case.fields}, headers=JSON)
        assert r.status_code == case.status, r.text
        assert r.json()["code"] == case.code
        assert _kept(world) == before, "nothing stored"
        page = client.get("/", headers=HTML).text
    assert 'id="favourites" aria-labelledby="favourites-title" hidden' in page
    event = [e for e in world.audit() if e["event"] == "favourite"][-1]
    assert (event["outcome"], event["code"]) == ("refused", case.code)


def test_without_a_session_a_star_is_refused(world: SamlWorld) -> None:
    with world.client() as client:
        r = client.post("/favourites", data={"role": READER, "star": "on"}, headers=JSON)
    assert r.status_code == 401
    assert r.json()["code"] == "SessionExpired"


def test_another_sites_post_asks_first_and_stores_nothing(world: SamlWorld) -> None:
    with world.client() as client:
        csrf = _signed_in(world, client)
        before = _kept(world)
        page = client.post(
            "/favourites",
            data={"csrf": csrf, "role": READER, "star": "on"},
            headers={**HTML, "sec-fetch-site": "cross-site"},
        )
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        assert "Add arn:aws:iam::444455556666:role/reader to your favourite roles?" in (
            html.unescape(page.text)
        )
        assert _kept(world) == before, "nothing stored on another site's post"
        done = client.post(
            "/favourites",
            data={"csrf": csrf, "role": READER, "star": "on"},
            headers={"sec-fetch-site": "same-origin"},
        )
    assert done.status_code == 303
    assert len(_kept(world)) == len(before) + 1


def test_a_store_failure_on_memories_leaves_the_picker_and_the_console_working(
    world: SamlWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading memories and recording a recent role are best-effort; a star is not."""
    store = _store(world)
    get, put = store.get, store.put

    async def failing_get(key: str) -> bytes | None:
        if key.startswith("picks:"):
            raise StoreUnavailable("down", log_detail="test: picks unreadable")
        return await get(key)

    async def failing_put(key: str, value: bytes, ttl: float) -> None:
        if key.startswith("picks:"):
            raise StoreUnavailable("down", log_detail="test: picks unwritable")
        await put(key, value, ttl)

    with world.client() as client:
        csrf = _signed_in(world, client)
        monkeypatch.setattr(store, "get", failing_get)
        monkeypatch.setattr(store, "put", failing_put)
        page = client.get("/", headers=HTML)
        console = client.post("/console", data={"csrf": csrf, "role": "reader"})
        star = client.post(
            "/favourites", data={"csrf": csrf, "role": READER, "star": "on"}, headers=JSON
        )
    assert page.status_code == 200
    assert 'data-arn="arn:aws:iam::444455556666:role/reader"' in page.text
    assert console.status_code == 303, console.text
    assert star.status_code == 503
    assert star.json()["code"] == "StoreUnavailable"
    warnings = "\n".join(world.logs.lines)
    assert "picker memories not read: StoreUnavailable (test: picks unreadable)" in warnings
    assert "recent role not recorded: StoreUnavailable (test: picks unreadable)" in warnings
