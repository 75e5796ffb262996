"""Workload credentials end to end: oidc-provider token → broker → STS stand-in → SDK."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import httpx
import pytest

from tests.fakes.oidc_world import DEPLOYER, READER, Flow
from tests.fakes.tokens import forge, hs256_with_public_key, unsigned
from tests.fakes.trust import web_identity_trust

pytestmark = pytest.mark.peers

DEPLOY = {"team": "deploy", "email": "ci@example.com"}


def creds_request(flow: Flow, token: str, **params: Any) -> httpx.Response:
    return httpx.post(
        f"{flow.url}/v1/credentials", params=params, headers={"Authorization": f"Bearer {token}"}
    )


def remember(flow: Flow, body: dict[str, Any]) -> None:
    c = body.get("Credentials", body)
    for k in ("SecretAccessKey", "SessionToken", "Token"):
        if k in c:
            flow.secrets.append(c[k])


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_token_becomes_credentials(flow: Flow, alg: str) -> None:
    token = flow.token(DEPLOY, alg=alg)
    r = creds_request(flow, token)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    remember(flow, body)
    assert body["RoleArn"] == DEPLOYER
    assert body["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert body["AssumedRoleUser"]["Arn"].endswith(":assumed-role/deployer/ci@example.com")
    [call] = flow.standin.calls
    assert call.action == "AssumeRoleWithWebIdentity"
    assert call.role_arn == DEPLOYER
    assert call.session_name == "ci@example.com"
    assert call.duration_seconds == 3600
    [event] = [
        e for e in flow.audit() if e.get("access_key_id") == body["Credentials"]["AccessKeyId"]
    ]
    assert event["outcome"] == "granted"
    assert event["rule"] == "deployers"
    assert event["idp"] == "test"


def test_formats_and_duration(flow: Flow) -> None:
    token = flow.token(DEPLOY)
    r = creds_request(flow, token, format="process", duration_seconds=900)
    assert r.status_code == 200, r.text
    body = r.json()
    remember(flow, body)
    assert body["Version"] == 1
    assert set(body) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert flow.standin.calls[-1].duration_seconds == 900
    r = creds_request(flow, token, format="env", duration_seconds=40000)
    assert r.status_code == 200
    assert r.text.startswith("export AWS_ACCESS_KEY_ID=ASIA")
    flow.secrets.extend(line.split("=", 1)[1] for line in r.text.splitlines()[1:3])
    assert flow.standin.calls[-1].duration_seconds == 3600  # clamped to the role's maximum


def test_several_roles_need_a_choice(flow: Flow) -> None:
    token = flow.token({"team": "deploy", "groups": ["readers"]})
    r = creds_request(flow, token)
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "RoleSelectionRequired"
    assert {x["name"] for x in problem["roles"]} == {"deployer", "reader"}
    assert {x["account_name"] for x in problem["roles"]} == {"Production", "Analytics"}
    assert flow.standin.calls == []
    r = httpx.post(
        f"{flow.url}/v1/credentials",
        json={"role": READER},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    remember(flow, r.json())
    assert flow.standin.calls[-1].role_arn == READER


def test_roles_listing(flow: Flow) -> None:
    token = flow.token({"groups": ["readers", "aws-444455556666-Auditor", "contractors-not"]})
    r = httpx.get(f"{flow.url}/v1/roles", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    arns = {x["arn"]: x["rule"] for x in body["roles"]}
    assert arns == {READER: "readers", "arn:aws:iam::444455556666:role/Auditor": "groups-to-roles"}
    assert flow.standin.calls == []


def test_botocore_container_provider(
    flow: Flow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(flow.token(DEPLOY))
    monkeypatch.setenv(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{flow.url}/v1/container-credentials?role=deployer"
    )
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    session = botocore.session.Session()
    creds = session.get_credentials()
    assert creds is not None
    assert creds.method == "container-role"
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key
    assert frozen.secret_key
    assert frozen.token
    flow.secrets += [frozen.secret_key, frozen.token]
    assert frozen.access_key.startswith("ASIA")
    # The credentials are real to the stand-in: a SigV4-signed call identifies the role.
    sts = boto3.client(
        "sts",
        endpoint_url=flow.standin_url,
        region_name="us-east-1",
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    )
    assert sts.get_caller_identity()["Arn"].startswith(
        "arn:aws:sts::111122223333:assumed-role/deployer/"
    )


def test_botocore_credential_process(
    flow: Flow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(flow.token(DEPLOY))
    cache = tmp_path / "cache"
    command = (
        f"{sys.executable} -m broker credential-process --url {flow.url} --role deployer "
        f"--token-file {token_file} --cache-dir {cache}"
    )
    config = tmp_path / "aws-config"
    config.write_text(f"[profile ci]\ncredential_process = {command}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for _ in range(2):
        creds = boto3.Session(profile_name="ci").get_credentials()
        assert creds is not None
        frozen = creds.get_frozen_credentials()
        assert frozen.access_key
        assert frozen.secret_key
        assert frozen.token
        flow.secrets += [frozen.secret_key, frozen.token]
        assert frozen.access_key.startswith("ASIA")
    assert len(flow.standin.calls) == 1, "the second process run must use the cache"
    [cached] = list(cache.iterdir())
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_key_rotation_is_picked_up(flow: Flow) -> None:
    before = flow.provider.kid("RS256")
    flow.provider.rotate_keys()
    time.sleep(1.1)  # past jwks_min_refresh_seconds
    token = flow.token(DEPLOY)
    assert flow.provider.kid("RS256") != before
    r = creds_request(flow, token)
    assert r.status_code == 200, r.text
    remember(flow, r.json())


@dataclass(frozen=True)
class Bad:
    name: str
    make: Callable[[Flow], dict[str, str]]  # request headers
    status: int
    code: str
    params: tuple[tuple[str, str], ...] = ()


def _claims(flow: Flow, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": flow.provider.issuer,
        "aud": "sts.amazonaws.com",
        "sub": "attacker",
        "team": "deploy",
        "iat": now,
        "exp": now + 300,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _forged(**over: Any) -> Callable[[Flow], dict[str, str]]:
    def make(flow: Flow) -> dict[str, str]:
        headers = over.pop("_headers", None)
        return _bearer(
            forge(flow.provider.private_jwk("RS256"), _claims(flow, **over), headers=headers)
        )

    return make


BAD = [
    Bad(
        "alg-none",
        lambda f: _bearer(unsigned(_claims(f), {"alg": "none", "kid": f.provider.kid("RS256")})),
        401,
        "AlgorithmNotAllowed",
    ),
    Bad(
        "hs256-with-public-key",
        lambda f: _bearer(
            hs256_with_public_key(f.provider.public_pem(), _claims(f), f.provider.kid("RS256"))
        ),
        401,
        "AlgorithmNotAllowed",
    ),
    Bad(
        "expired",
        _forged(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        401,
        "TokenExpired",
    ),
    Bad("nbf-in-future", _forged(nbf=int(time.time()) + 3600), 401, "TokenNotYetValid"),
    Bad("iat-in-future", _forged(iat=int(time.time()) + 3600), 401, "TokenNotYetValid"),
    Bad(
        "wrong-iss",
        lambda f: _bearer(
            forge(f.provider.private_jwk("RS256"), _claims(f, iss=f.provider.issuer + "/evil"))
        ),
        401,
        "UnknownIssuer",
    ),
    Bad(
        "issuer-not-configured",
        lambda f: _bearer(
            forge(f.provider.private_jwk("RS256"), _claims(f, iss="https://evil.example"))
        ),
        401,
        "UnknownIssuer",
    ),
    Bad("wrong-aud", _forged(aud="https://someone-else"), 401, "InvalidAudience"),
    Bad("no-exp", _forged(exp=None), 401, "InvalidToken"),
    Bad("unknown-kid", _forged(_headers={"kid": "not-a-published-kid"}), 401, "UnknownSigningKey"),
    Bad(
        "unknown-crit",
        _forged(_headers={"crit": ["exp-ext"], "exp-ext": 1}),
        401,
        "UnsupportedCriticalHeader",
    ),
    Bad(
        "tampered-payload",
        lambda f: _bearer(_tamper(forge(f.provider.private_jwk("RS256"), _claims(f)))),
        401,
        "InvalidSignature",
    ),
    Bad("one-megabyte-token", lambda f: _bearer("a" * (1024 * 1024)), 401, "TokenTooLarge"),
    Bad("not-a-jwt", lambda f: _bearer("hello"), 401, "InvalidToken"),
    Bad("garbage-segments", lambda f: _bearer("e30.%%%%.x"), 401, "InvalidToken"),
    Bad("no-authorization", lambda f: {}, 401, "MissingToken"),
    Bad("basic-auth", lambda f: {"Authorization": "Basic dXNlcjpwYXNz"}, 401, "MissingToken"),
    Bad(
        "role-not-granted",
        lambda f: _bearer(f.token(DEPLOY)),
        403,
        "RoleNotGranted",
        (("role", "reader"),),
    ),
    Bad(
        "deny-overrides-grant",
        lambda f: _bearer(f.token({"team": "deploy", "groups": ["contractors"]})),
        403,
        "NoRoleGranted",
    ),
    Bad(
        "bad-format",
        lambda f: _bearer(f.token(DEPLOY)),
        400,
        "InvalidParameter",
        (("format", "xml"),),
    ),
    Bad(
        "bad-duration",
        lambda f: _bearer(f.token(DEPLOY)),
        400,
        "InvalidParameter",
        (("duration_seconds", "60"),),
    ),
]


def _tamper(token: str) -> str:
    """Keep the signature, swap in a payload that claims more."""
    import base64
    import json

    h, p, s = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["groups"] = ["aws-111122223333-Admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{h}.{forged}.{s}"


@pytest.mark.parametrize("case", BAD, ids=attrgetter("name"))
def test_bad_input_is_refused_without_sts(flow: Flow, case: Bad) -> None:
    headers = case.make(flow)
    flow.secrets.extend(v.split(" ", 1)[-1] for v in headers.values() if len(v) > 40)
    r = httpx.post(f"{flow.url}/v1/credentials", params=dict(case.params), headers=headers)
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == case.code
    assert problem["error_id"]
    assert "Traceback" not in r.text
    assert flow.standin.calls == [], "a refused request must never reach STS"
    events = [e for e in flow.audit() if e.get("error_id") == problem["error_id"]]
    assert [e["code"] for e in events] == [case.code]


def test_oversized_body_is_refused_before_parsing(flow: Flow) -> None:
    token = flow.token(DEPLOY)
    r = httpx.post(
        f"{flow.url}/v1/credentials",
        content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
        headers={**_bearer(token), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "RequestTooLarge"
    assert flow.standin.calls == []


def test_jku_is_never_followed(flow: Flow) -> None:
    hits: list[str] = []
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Trap(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        trap = f"http://127.0.0.1:{server.server_address[1]}/jwks"
        token = forge(
            flow.provider.private_jwk("RS256"),
            _claims(flow),
            headers={"kid": "attacker-kid", "jku": trap, "x5u": trap},
        )
        r = creds_request(flow, token)
        assert r.json()["code"] == "UnknownSigningKey"
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert flow.standin.calls == []


def test_sts_access_denied_is_actionable(flow: Flow) -> None:
    role = flow.standin.role(DEPLOYER)
    assert role is not None
    trusted = role.trust_policy_document
    # A trust policy for another provider: STS refuses this issuer's tokens for the role.
    other = "arn:aws:iam::111122223333:oidc-provider/elsewhere.example.com"
    flow.standin.update_trust_policy(DEPLOYER, web_identity_trust(other, ["sts.amazonaws.com"]))
    try:
        r = creds_request(flow, flow.token(DEPLOY))
    finally:
        flow.standin.update_trust_policy(DEPLOYER, trusted)
    assert r.status_code == 403
    problem = r.json()
    assert problem["code"] == "StsAccessDenied"
    assert "trust policy" in problem["detail"]
    assert ":sub" in problem["detail"]


def test_throttling_is_retried_then_reported(flow: Flow) -> None:
    flow.standin.fail_next("Throttling", count=1)
    r = creds_request(flow, flow.token(DEPLOY))
    assert r.status_code == 200, r.text
    remember(flow, r.json())
    assert [c.outcome for c in flow.standin.calls] == ["Throttling", "ok"]

    flow.standin.reset()
    flow.standin.fail_next("Throttling", count=10)
    r = creds_request(flow, flow.token(DEPLOY))
    assert r.status_code == 503
    assert r.json()["code"] == "StsThrottled"
    assert r.headers["retry-after"]
    assert len(flow.standin.calls) == 3  # sts_max_attempts


def test_probes_and_metrics(flow: Flow) -> None:
    assert httpx.get(f"{flow.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{flow.url}/readyz").status_code == 200
    metrics = httpx.get(f"{flow.url}/metrics").text
    assert "broker_decisions_total" in metrics
    assert "broker_http_requests_total" in metrics


def test_unknown_path_is_problem_json(flow: Flow) -> None:
    r = httpx.get(f"{flow.url}/nope")
    assert r.status_code == 404
    assert r.json()["status"] == 404


def test_no_environment_leak() -> None:
    assert not [k for k in os.environ if k.startswith("AWS_ACCESS")]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/credentials"), ("POST", "/v1/container-credentials")]
)
def test_wrong_method_is_problem_json(flow: Flow, method: str, path: str) -> None:
    r = httpx.request(method, f"{flow.url}{path}")
    assert r.status_code == 405
    assert r.json()["code"] == "MethodNotAllowed"
    assert flow.standin.calls == []
