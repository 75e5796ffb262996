"""Property, through the real app: whatever reaches the command line's token and device
endpoints (any field, value, repetition, content type) gets a 4xx with a stable code, RFC 6749
§5.2's `error` or the broker's problem `code`, never a 500, a traceback or an STS call."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from anyio.from_thread import BlockingPortal
from hypothesis import given
from hypothesis import strategies as st

from broker.config import parse_config
from tests.fakes.app import BASE_URL, NO_STS, InProcess, blocking
from tests.fakes.fuzzing import CLIENT_CODES, field_text, no_tracebacks, record
from tests.fakes.saml_idp import make_keypair

pytestmark = pytest.mark.fuzz
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
        "authorization_pending",
        "slow_down",
        "expired_token",
        "access_denied",
    }
)
FIELDS = ["grant_type", "code", "code_verifier", "redirect_uri", "client_id", "device_code"]
GRANTS = ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code", "password", ""]


@dataclass
class Broker:
    portal: BlockingPortal
    app: InProcess

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        call = functools.partial(self.app.client.post, path, content=body, headers=headers)
        return self.portal.call(call)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("cli-token")
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
                    "sso_url": "https://idp.example.test/saml/sso",
                    "certificates": [key.cert_pem],
                }
            },
            "roles": {"deployer": {"arn": "arn:aws:iam::111122223333:role/deployer"}},
            "rules": [{"name": "all", "grant": ["deployer"]}],
        }
    )
    with blocking(config) as (portal, app):
        yield Broker(portal, app)


values = st.sampled_from(["broker-cli", *GRANTS, "bst_x", "http://127.0.0.1:1/cb"]) | field_text
forms = st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=6), values), max_size=8).map(
    lambda pairs: urlencode(pairs).encode()
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)
bodies = forms | st.binary(max_size=200)


@given(st.sampled_from(["/cli/token", "/cli/device"]), bodies, content_types)
def test_any_token_request_gets_a_stable_refusal(
    broker: Broker, path: str, body: bytes, ctype: str
) -> None:
    headers = {"content-type": ctype} if ctype else {}
    with no_tracebacks():
        r = broker.post(path, body, headers)
    assert broker.app.runtime.sts.calls == 0
    if r.status_code == 200:  # a well-formed device request is granted a device code
        assert path == "/cli/device"
        assert set(r.json()) >= {"device_code", "user_code", "interval"}
        record(path, "200")
        return
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    doc = r.json()
    if r.headers["content-type"].startswith("application/problem+json"):
        assert doc["code"] in CLIENT_CODES
        record(path, doc["code"])
    else:
        assert doc["error"] in OAUTH_ERRORS, doc
        assert r.headers["cache-control"] == "no-store"
        record(path, doc["error"])
    assert "Traceback" not in r.text
