"""Property, through the real app: whatever a caller who has not signed in sends (options as
query, JSON or form; forms; durations; `next` and RelayState; any path and method), the answer
is never a 500: a refusal is a 4xx with a stable code and leaves the store as it was, a
redirect stays on the site (or goes to the IdP), no STS call is made, nothing logs a traceback."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from anyio.from_thread import BlockingPortal
from hypothesis import given
from hypothesis import strategies as st

from broker.config import parse_config
from tests.fakes.app import BASE_URL, NO_STS, InProcess, StoreWatch, blocking
from tests.fakes.fuzzing import CLIENT_CODES, field_text, json_values, no_tracebacks, record
from tests.fakes.saml_idp import make_keypair

pytestmark = pytest.mark.fuzz

SSO_URL = "https://idp.example.test/saml/sso"
OPTION_KEYS = ["role", "duration_seconds", "format", "SAMLResponse", "RelayState", "next", "csrf"]


@dataclass
class Broker:
    portal: BlockingPortal
    app: InProcess
    store: StoreWatch

    def send(self, request: Req) -> httpx.Response:
        self.app.client.cookies.clear()
        call = functools.partial(
            self.app.client.request,
            request.method,
            request.path,
            content=request.body,
            headers=request.headers,
        )
        return self.portal.call(call)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("readers")
    key = make_keypair(tmp, "idp")
    config = parse_config(
        {
            "server": {"base_url": BASE_URL, "session_secret": "x" * 32},
            "aws": {"sts_endpoint": NO_STS, "sts_max_attempts": 1},
            "audit": {"path": str(Path(tmp) / "audit.jsonl")},
            "identity_providers": {
                "corp": {
                    "type": "saml",
                    "entity_id": "https://idp.example.test/saml",
                    "sso_url": SSO_URL,
                    "certificates": [key.cert_pem],
                },
                "ci": {
                    "type": "oidc",
                    "issuer": "https://oidc.example.invalid",
                    "audiences": ["sts.amazonaws.com"],
                },
            },
            "roles": {"deployer": {"arn": "arn:aws:iam::111122223333:role/deployer"}},
            "rules": [{"name": "all", "grant": ["deployer"]}],
        }
    )
    with blocking(config) as (portal, app):
        yield Broker(portal, app, StoreWatch(app.runtime.store))


@dataclass(frozen=True)
class Req:
    target: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] | None = None


CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "text/plain",
    "",
]
options = st.dictionaries(
    st.sampled_from(OPTION_KEYS) | st.text(max_size=8), field_text, max_size=5
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    kind = draw(st.sampled_from(["json", "json-any", "form", "raw", "none"]))
    if kind == "json":
        data: Any = draw(
            st.dictionaries(st.sampled_from(OPTION_KEYS), json_values | field_text, max_size=4)
        )
        body = json.dumps(data).encode()
    elif kind == "json-any":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "form":
        body = urlencode(draw(options)).encode()
    elif kind == "raw":
        body = draw(st.binary(max_size=200))
    else:
        body = b""
    return body, ctype


def _headers(ctype: str | None, extra: dict[str, str]) -> dict[str, str]:
    headers = {k: v for k, v in extra.items() if v}
    if ctype is not None:
        headers["content-type"] = ctype
    return headers


accepts = st.sampled_from(["", "application/json", "text/html", "text/html,*/*;q=0.8"])
authorizations = st.sampled_from(
    ["", "Bearer x.y.z", "Bearer", "Basic abc", "eyJhbGciOiJub25lIn0.e30."]
)


@st.composite
def option_requests(draw: st.DrawFn) -> Req:
    """/v1/credentials and /v1/saml/credentials: request_options, parse_duration, format."""
    path = draw(st.sampled_from(["/v1/credentials", "/v1/saml/credentials"]))
    query = urlencode(draw(options))
    body, ctype = draw(bodies())
    headers = _headers(ctype, {"authorization": draw(authorizations), "accept": draw(accepts)})
    return Req("options " + path, "POST", path + ("?" + query if query else ""), body, headers)


@st.composite
def acs_requests(draw: st.DrawFn) -> Req:
    """The ACS: read_form, SAMLResponse, RelayState."""
    fields = draw(options)
    if draw(st.booleans()):
        fields["SAMLResponse"] = base64.b64encode(draw(st.binary(max_size=300))).decode()
    ctype = draw(st.sampled_from(["application/x-www-form-urlencoded", *CONTENT_TYPES]))
    headers = _headers(ctype, {"accept": draw(accepts)})
    return Req("acs", "POST", "/saml/acs", urlencode(fields).encode(), headers)


@st.composite
def next_requests(draw: st.DrawFn) -> Req:
    """`next` (safe_next) and the pages that take it before anyone signs in."""
    path = draw(st.sampled_from(["/saml/login", "/signin", "/console", "/"]))
    query: dict[str, str] = {"next": draw(field_text)}
    if path == "/saml/login" and draw(st.booleans()):
        query["idp"] = draw(st.sampled_from(["corp", "ci", ""]) | field_text)
    if path in ("/console", "/"):
        query.update(
            draw(
                st.dictionaries(
                    st.sampled_from(["role", "destination", "region"]), field_text, max_size=3
                )
            )
        )
    raw = draw(st.booleans())
    text = "&".join(f"{k}={v}" for k, v in query.items()) if raw else urlencode(query)
    headers = _headers(None, {"accept": draw(accepts)})
    return Req(
        "next " + path,
        "GET",
        f"{path}?{quote(text, safe='=&%/')}" if raw else f"{path}?{text}",
        b"",
        headers,
    )


@st.composite
def browser_forms(draw: st.DrawFn) -> Req:
    """The signed-in pages' forms, without a session: read_form, then CSRF and the cookie."""
    path = draw(
        st.sampled_from(
            ["/console", "/cli-credentials", "/logout", "/favourites", "/cli/authorize", "/device"]
        )
    )
    body, ctype = draw(bodies())
    cookie = draw(
        st.sampled_from(["", "broker_session=x", "broker_session=a.b.c"])
        | field_text.map(lambda v: "broker_session=" + quote(v))
    )
    headers = _headers(ctype, {"accept": draw(accepts), "cookie": cookie})
    return Req("form " + path, "POST", path, body, headers)


AUTHORIZE_KEYS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "user_code",
]
authorize_values = (
    st.sampled_from(["code", "broker-cli", "S256", "plain", "http://127.0.0.1:1/cb"]) | field_text
)


@st.composite
def terminal_pages(draw: st.DrawFn) -> Req:
    """`broker login`'s browser pages before anyone signs in: the loopback authorization
    request (every parameter checked before any redirect) and the device page."""
    path = draw(st.sampled_from(["/cli/authorize", "/device"]))
    query = urlencode(
        draw(st.dictionaries(st.sampled_from(AUTHORIZE_KEYS), authorize_values, max_size=7))
    )
    headers = _headers(None, {"accept": draw(accepts)})
    return Req("terminal " + path, "GET", f"{path}?{query}", b"", headers)


@st.composite
def terminal_api(draw: st.DrawFn) -> Req:
    """The session token's API with no token, a malformed one or one never issued."""
    method, path = draw(
        st.sampled_from(
            [
                ("GET", "/cli/roles"),
                ("POST", "/cli/credentials"),
                ("POST", "/cli/console"),
                ("POST", "/cli/logout"),
            ]
        )
    )
    body, ctype = draw(bodies())
    token = draw(st.sampled_from(["", "Bearer bst_x", "bearer ", "Bearer " + "A" * 60]))
    headers = _headers(ctype, {"authorization": token, "accept": draw(accepts)})
    return Req("terminal api " + path, method, path, body, headers)


@st.composite
def anything(draw: st.DrawFn) -> Req:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = "/" + quote(draw(st.text(max_size=40)), safe="/?&=%")
    body, ctype = draw(bodies())
    return Req("any path", method, path, body, _headers(ctype, {"accept": draw(accepts)}))


def check(broker: Broker, request: Req) -> None:
    before = len(broker.store.changed)
    with no_tracebacks():
        r = broker.send(request)
    assert r.status_code < 500, (request, r.status_code, r.text[:300])
    assert broker.app.runtime.sts.calls == 0
    changed = broker.store.changed[before:]
    if r.status_code >= 400:
        assert not changed, changed
        if request.method == "HEAD":  # no body to read the code from
            code = str(r.status_code)
        elif r.headers.get("content-type", "").startswith("application/problem+json"):
            code = r.json()["code"]
            assert code in CLIENT_CODES, code
        else:
            assert r.headers.get("content-type", "").startswith("text/html"), r.headers
            code = str(r.status_code)
        assert "Traceback" not in r.text
        record(request.target, code)
        return
    if 300 <= r.status_code < 400:
        location = r.headers["location"]
        on_site = location.startswith("/") and not location.startswith(("//", "/\\"))
        assert on_site or location.startswith(SSO_URL + "?"), location
    # Only a sign-in that starts may write: its RelayState and its request ID.
    assert all(c.split(" ", 1)[1].startswith(("relay:", "saml-request:")) for c in changed), changed
    record(request.target, str(r.status_code))


@given(option_requests())
def test_options(broker: Broker, request: Req) -> None:
    check(broker, request)


@given(acs_requests())
def test_acs_form(broker: Broker, request: Req) -> None:
    check(broker, request)


@given(next_requests())
def test_next_and_relay_state(broker: Broker, request: Req) -> None:
    check(broker, request)


@given(browser_forms())
def test_browser_forms_without_a_session(broker: Broker, request: Req) -> None:
    check(broker, request)


@given(anything())
def test_any_path_and_method(broker: Broker, request: Req) -> None:
    check(broker, request)


@given(terminal_pages())
def test_terminal_pages_without_a_session(broker: Broker, request: Req) -> None:
    check(broker, request)


@given(terminal_api())
def test_terminal_api_without_a_session_token(broker: Broker, request: Req) -> None:
    check(broker, request)
