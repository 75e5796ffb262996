"""Routes that mint credentials or change state act only on requests this site started
(Fetch Metadata, Origin); another site's link or form gets a page that asks first."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter

import httpx
import pytest

from tests.fakes.saml_world import BASE_URL, SamlWorld, saml_world

pytestmark = pytest.mark.peers

HTML = {"accept": "text/html"}
FORM = re.compile(r'<form id="confirm" method="post" action="([^"]+)">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')

#: Another site started these: each gets the confirm page, nothing is minted or changed.
FOREIGN = {
    "cross-site": {"sec-fetch-site": "cross-site"},
    "same-site": {"sec-fetch-site": "same-site"},
    "foreign-origin": {"origin": "https://evil.example"},
    "foreign-origin-old-browser-post": {"origin": "http://127.0.0.1:9999"},
    "cross-site-origin-null": {"sec-fetch-site": "cross-site", "origin": "null"},
}
#: This site, the person (typed, bookmark) or a browser that sends neither header.
PASSING = {
    "same-origin": {"sec-fetch-site": "same-origin"},
    "none": {"sec-fetch-site": "none"},
    "absent": {},
    # Our pages send Referrer-Policy: no-referrer, so a browser posts their forms with
    # Origin: null (Fetch, "serialize a request origin"); Sec-Fetch-Site still says same-origin.
    "same-origin-origin-null": {"sec-fetch-site": "same-origin", "origin": "null"},
    "our-origin": {"origin": BASE_URL},
}


@dataclass(frozen=True)
class Route:
    name: str
    action: str
    send: Callable[[httpx.Client, str, dict[str, str]], httpx.Response]
    done: int  # the status when it acts
    mints: bool = True


ROUTES = [
    Route(
        "get-console",
        "/console",
        lambda c, csrf, h: c.get("/console", params={"role": "reader"}, headers={**HTML, **h}),
        303,
    ),
    Route(
        "post-console",
        "/console",
        lambda c, csrf, h: c.post(
            "/console", data={"csrf": csrf, "role": "reader"}, headers={**HTML, **h}
        ),
        303,
    ),
    Route(
        "cli-credentials",
        "/cli-credentials",
        lambda c, csrf, h: c.post(
            "/cli-credentials", data={"csrf": csrf, "role": "reader"}, headers={**HTML, **h}
        ),
        200,
    ),
    Route(
        "favourites",
        "/favourites",
        lambda c, csrf, h: c.post(
            "/favourites",
            data={"csrf": csrf, "role": "reader", "star": "on"},
            headers={**HTML, **h},
        ),
        303,
        mints=False,
    ),
    Route(
        "logout",
        "/logout",
        lambda c, csrf, h: c.post("/logout", data={"csrf": csrf}, headers={**HTML, **h}),
        200,
        mints=False,
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("cross-site")) as w:
        yield w


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "world" in request.fixturenames:
        request.getfixturevalue("world").standin.reset()


def _signed_in(world: SamlWorld, client: httpx.Client) -> str:
    assert world.sign_in(client).status_code == 303
    return world.csrf(client)


def _confirm_form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    found = FORM.search(page.text)
    assert found is not None, page.text
    fields = {k: html.unescape(v) for k, v in HIDDEN.findall(found.group(2))}
    return html.unescape(found.group(1)), fields


def _minted(world: SamlWorld) -> bool:
    return bool(world.standin.calls or world.standin.federation_calls)


@pytest.mark.parametrize("headers", FOREIGN.values(), ids=FOREIGN.keys())
@pytest.mark.parametrize("route", ROUTES, ids=attrgetter("name"))
def test_another_site_gets_a_confirm_page(
    world: SamlWorld, route: Route, headers: dict[str, str]
) -> None:
    with world.client() as client:
        csrf = _signed_in(world, client)
        page = route.send(client, csrf, headers)
        assert page.status_code == 200, page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        action, fields = _confirm_form(page)
        assert action == route.action
        assert fields["csrf"] == csrf
        assert not _minted(world), "nothing minted on another site's request"
        assert client.get("/", headers=HTML).status_code == 200, "still signed in"
        # The button posts from this site, with the form's token: now it acts.
        done = client.post(action, data=fields, headers={"sec-fetch-site": "same-origin"})
    assert done.status_code == route.done, done.text
    if route.mints:
        assert world.sts_calls()[-1].role_arn.endswith(":role/reader")


@pytest.mark.parametrize("headers", PASSING.values(), ids=PASSING.keys())
@pytest.mark.parametrize("route", ROUTES, ids=attrgetter("name"))
def test_this_site_and_bookmarks_act_at_once(
    world: SamlWorld, route: Route, headers: dict[str, str]
) -> None:
    with world.client() as client:
        csrf = _signed_in(world, client)
        r = route.send(client, csrf, headers)
    assert r.status_code == route.done, r.text
    assert FORM.search(r.text) is None
    if route.mints:
        assert world.sts_calls(), "credentials were minted"


def test_confirm_page_keeps_the_destination(world: SamlWorld) -> None:
    with world.client() as client:
        _signed_in(world, client)
        page = client.get(
            "/console",
            params={"role": "admin", "destination": "ec2", "region": "us-west-2"},
            headers={**HTML, **FOREIGN["cross-site"]},
        )
    _, fields = _confirm_form(page)
    assert (fields["role"], fields["destination"], fields["region"]) == (
        "admin",
        "ec2",
        "us-west-2",
    )
    assert "admin" in page.text


def test_idp_initiated_single_role_opens_the_console(world: SamlWorld) -> None:
    """The broker itself chose /console after an IdP-initiated sign-in: the redirect that
    follows the IdP's cross-site POST opens the console without asking."""
    with world.client() as client:
        r = world.sign_in(client, roles=[world.pairs[0]])
        assert r.headers["location"] == "/console?role=deployer"
        console = client.get(r.headers["location"], headers=FOREIGN["cross-site"])
        assert console.status_code == 303
        again = client.get(r.headers["location"], headers={**HTML, **FOREIGN["cross-site"]})
    assert len(world.sts_calls()) == 1
    assert FORM.search(again.text) is not None, "the broker vouches for one redirect only"


def test_a_bookmark_through_the_idp_opens_the_console(world: SamlWorld) -> None:
    """Typed or bookmarked (Sec-Fetch-Site: none) deep link, no session: the sign-in started
    here, so the console opens right after it."""
    target = "/console?role=admin&destination=ec2"
    with world.client() as client:
        request_id = world.start_login(client, target, headers=PASSING["none"])
        r = client.post(
            "/saml/acs", data={"SAMLResponse": world.response(in_response_to=request_id)}
        )
        assert r.headers["location"] == target
        console = client.get(target, headers=FOREIGN["cross-site"])
    assert console.status_code == 303, console.text
    assert world.sts_calls()[-1].role_arn.endswith(":role/admin")


def test_another_sites_sign_in_link_asks_before_the_console(world: SamlWorld) -> None:
    """/saml/login?next=/console… linked from another site: the sign-in goes ahead, the
    console asks first."""
    target = "/console?role=admin"
    with world.client() as client:
        request_id = world.start_login(client, target, headers=FOREIGN["cross-site"])
        r = client.post(
            "/saml/acs", data={"SAMLResponse": world.response(in_response_to=request_id)}
        )
        assert r.headers["location"] == target
        page = client.get(target, headers={**HTML, **FOREIGN["cross-site"]})
    assert page.status_code == 200
    assert _confirm_form(page)[1]["role"] == "admin"
    assert not _minted(world)


def test_expired_session_offers_to_sign_in_again(world: SamlWorld) -> None:
    with world.client() as client:
        page = client.post("/console", data={"csrf": "x", "role": "reader"}, headers=HTML)
    assert page.status_code == 401
    assert 'id="error-code">SessionExpired' in page.text
    assert 'id="sign-in-again" href="/saml/login?idp=corp&amp;next=%2F"' in page.text
