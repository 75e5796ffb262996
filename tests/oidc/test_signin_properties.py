"""Property, through the real app: whatever reaches /oidc/callback (any code, state, error and
other parameters, repeated or not, with or without this browser's pending sign-in) and
/oidc/login, the answer is never a 500: a 4xx with a stable code, no session cookie, no STS
call, no traceback; a redirect goes only to a path here."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from anyio.from_thread import BlockingPortal
from hypothesis import given
from hypothesis import strategies as st

from broker.config import parse_config
from broker.oidc.pending import PendingSignIn, PendingSignIns
from tests.fakes.app import BASE_URL, NO_STS, InProcess, blocking
from tests.fakes.fuzzing import CLIENT_CODES, Quiet, field_text, record

pytestmark = pytest.mark.fuzz

SECRET = b"y" * 32
# Nothing listens on the discard port: the IdP is down, so no code is ever redeemed here.
IDP_DOWN = "http://127.0.0.1:9"


@dataclass
class Broker:
    portal: BlockingPortal
    app: InProcess
    pending: PendingSignIns

    def get(self, path: str, cookie: str | None) -> httpx.Response:
        client = self.app.client
        client.cookies.clear()
        if cookie is not None:
            client.cookies.set(self.pending.cookie, cookie)
        call = functools.partial(client.get, path, headers={"accept": "text/html"})
        return self.portal.call(call)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("oidc-signin-fuzz")
    secret = tmp / "client-secret"
    secret.write_text("client-secret-value")
    config = parse_config(
        {
            "server": {"base_url": BASE_URL, "session_secret": SECRET.decode()},
            "aws": {"sts_endpoint": NO_STS, "sts_max_attempts": 1},
            "audit": {"path": str(Path(tmp) / "audit.jsonl")},
            "identity_providers": {
                "corp": {
                    "type": "oidc",
                    "issuer": IDP_DOWN,
                    "login": True,
                    "client_id": "broker",
                    "client_secret_file": str(secret),
                    "jwks_min_refresh_seconds": 3600,
                    "http_timeout_seconds": 1,
                }
            },
            "roles": {"deployer": {"arn": "arn:aws:iam::111122223333:role/deployer"}},
            "rules": [{"name": "all", "grant": ["deployer"]}],
        }
    )
    with blocking(config) as (portal, app):
        yield Broker(portal, app, PendingSignIns([SECRET], secure=False))


ERROR_CODE = re.compile(r'<code id="error-code">(\w+)</code>')


@contextmanager
def no_tracebacks_but_idp_down() -> Iterator[None]:
    """No traceback and no error line, except the 503 this IdP being down is logged as."""
    quiet = Quiet()
    root = logging.getLogger()
    root.addHandler(quiet)
    try:
        yield
    finally:
        root.removeHandler(quiet)
    assert all("refused IdpUnavailable status=503" in line for line in quiet.bad), quiet.bad[:3]
    assert not any("Traceback" in line for line in quiet.lines)


KNOWN_STATE = "the-state-this-browser-started"
params = st.lists(
    st.tuples(
        st.sampled_from(["code", "state", "error", "error_description", "iss", "x"]),
        field_text | st.just(KNOWN_STATE),
    ),
    max_size=6,
)


# What a browser can hold in a cookie: printable ASCII but the separators.
cookie_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'),
    max_size=300,
)


@given(query=params, with_pending=st.booleans(), cookie_noise=st.none() | cookie_text)
def test_callback_never_fails_open(
    broker: Broker,
    query: list[tuple[str, str]],
    with_pending: bool,
    cookie_noise: str | None,
) -> None:
    now = time.time()
    if with_pending:
        started = PendingSignIn(KNOWN_STATE, "nonce", "v" * 64, "corp", "/", now, True)
        cookie: str | None = broker.pending.dumps([started])
    else:
        cookie = cookie_noise
    # With this browser's own state and a code or an error, the broker would ask the IdP's
    # discovery document (endpoints, `iss`): the IdP is down here (503), which the flow tests
    # cover against a real one.
    answer = dict(query)
    redeems = with_pending and answer.get("state") == KNOWN_STATE
    redeems = redeems and ("error" in answer or bool(answer.get("code")))
    calls = broker.app.runtime.sts.calls
    with no_tracebacks_but_idp_down():
        r = broker.get("/oidc/callback?" + urlencode(query), cookie)
    assert "broker_session" not in r.headers.get("set-cookie", "")
    assert broker.app.runtime.sts.calls == calls
    assert r.headers["cache-control"] == "no-store"
    if redeems:
        assert r.status_code == 503, r.text
        record("oidc-callback", "IdpUnavailable")
        return
    assert 400 <= r.status_code < 500, r.text
    found = ERROR_CODE.search(r.text)
    assert found is not None, r.text
    assert found.group(1) in CLIENT_CODES
    record("oidc-callback", found.group(1))


@given(idp=st.none() | field_text, next_path=st.none() | field_text)
def test_login_redirects_only_to_the_idp_or_here(
    broker: Broker, idp: str | None, next_path: str | None
) -> None:
    query = {k: v for k, v in {"idp": idp, "next": next_path}.items() if v is not None}
    with no_tracebacks_but_idp_down():
        r = broker.get("/oidc/login?" + urlencode(query), None)
    # The only IdP is down: a sign-in to it is 503 until its discovery document can be read.
    assert r.status_code in (303, 400, 404, 503), r.text
    if r.status_code == 303:
        assert r.headers["location"].startswith("/signin?") or r.headers["location"].startswith(
            IDP_DOWN + "/"
        )
    record("oidc-login", str(r.status_code))
