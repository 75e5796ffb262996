"""Issuer mode next to pass-through, in one run: the issuance path's CPU per request and rate.

    .venv/bin/python bench/issuer_mode.py [--seconds 5] [--concurrency 32]

Both modes run `Exchange.issue` (map the identity, choose the role, build the STS call, send it
over the pooled native transport, parse the credentials) in this process, against a zero-work
STS responder in a child process (its CPU is not counted):

- pass-through: the identity's verified OIDC token goes to AssumeRoleWithWebIdentity;
- issuer: the broker renders two session tags and a SourceIdentity, signs a SAML assertion
  (RSA-2048, RSA-SHA256, exclusive c14n) and sends it to AssumeRoleWithSAML.

The front door (HTTP parsing, JWT verification, rendering) is the same for both and is not
in these figures: bench/oidc_exchange.py measures it. Keys are generated per run.

The `console` phases add a console click's getSigninToken (and the login URL) to each
issuance, on the broker's pooled transport (`Federation.signin_url`); the `console httpx`
phases make the same call as the broker did before, on an httpx.AsyncClient, so that both are
measured in the same run against the same responder.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from broker.config import AwsSettings
    from broker.identity import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes

ACCOUNT = "111122223333"
CLICK: dict[str, Any] = {
    "issuer": "https://broker.example.com",
    "destination": "https://console.aws.amazon.com/console/home",
    "duration": 3600,
}
RESULT = """<{a}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{a}Result>
<AssumedRoleUser><Arn>arn:aws:sts::{acct}:assumed-role/bench/u</Arn>
<AssumedRoleId>AROABENCH:u</AssumedRoleId></AssumedRoleUser><Credentials>
<AccessKeyId>ASIABENCHBENCHBENCH0</AccessKeyId><SecretAccessKey>{s}</SecretAccessKey>
<SessionToken>{t}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
</{a}Result></{a}Response>"""


def responder(port: int) -> None:
    """Keep-alive HTTP/1.1, one request at a time per connection; 400 unless the form is one
    of the two unsigned calls with its proof."""
    import httptools
    import uvloop

    answers = {}
    for action, proof in (
        (b"AssumeRoleWithWebIdentity", b"WebIdentityToken="),
        (b"AssumeRoleWithSAML", b"SAMLAssertion="),
    ):
        body = RESULT.format(a=action.decode(), acct=ACCOUNT, s="b" * 40, t="B" * 600).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        answers[action] = (proof, head.encode() + body)
    bad = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    token = b'{"SigninToken": "' + b"T" * 800 + b'"}'
    signin = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(token), token)
    )

    class Protocol(asyncio.Protocol):
        def __init__(self) -> None:
            self.body: list[bytes] = []
            self.url = b""
            self.parser = httptools.HttpRequestParser(self)
            self.transport: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            form = b"".join(self.body)
            self.body.clear()
            answer = bad
            if self.url.startswith(b"/federation?Action=getSigninToken"):
                answer = signin
            for action, (proof, ok) in answers.items():
                if b"Action=" + action + b"&" in form and proof in form:
                    answer = ok
            self.transport.write(answer)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


async def httpx_signin_url(
    http: httpx.AsyncClient,
    aws: AwsSettings,
    creds: Credentials,
    *,
    issuer: str,
    destination: str,
    duration: int,
) -> str:
    """The console click's getSigninToken as the broker made it on httpx (the baseline)."""
    import json
    from urllib.parse import urlencode

    endpoint = aws.federation_url()
    session = {
        "sessionId": creds.access_key_id,
        "sessionKey": creds.secret_access_key,
        "sessionToken": creds.session_token,
    }
    params = {
        "Action": "getSigninToken",
        "Session": json.dumps(session),
        "SessionDuration": str(duration),
    }
    resp = await http.get(endpoint, params=params, timeout=10.0)
    token = resp.json()["SigninToken"] if resp.status_code == 200 else None
    if not isinstance(token, str) or not token:
        raise RuntimeError(f"getSigninToken status={resp.status_code}")
    query = urlencode(
        {"Action": "login", "Issuer": issuer, "Destination": destination, "SigninToken": token}
    )
    return f"{endpoint}?{query}"


async def measure(seconds: float, concurrency: int, sts_url: str, tmp: Path) -> list[str]:
    import httpx

    from broker.audit import Trail
    from broker.aws.sts import StsClient
    from broker.config import parse_config
    from broker.console_url.federation import Federation
    from broker.exchange import Exchange
    from broker.identity import Identity, WebIdentityToken
    from broker.issuer.mint import AssertionIssuer
    from broker.mapping import map_roles

    # The tests' key maker: the bench signs with the same kind of key the tests verify.
    from tests.fakes.saml_idp import make_keypair

    pair = make_keypair(tmp, "bench-issuer")
    key_file, cert_file = pair.key_file, pair.cert_file
    config = parse_config(
        {
            "aws": {
                "sts_endpoint": sts_url,
                "federation_endpoint": sts_url + "federation",
                "sts_max_attempts": 1,
                "sts_rate_per_account": None,
                "sts_single_flight": False,  # distinct requests, as distinct people make
            },
            "identity_providers": {
                "ci": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["a"]}
            },
            "issuer": {
                "signing_keys": [{"key_file": str(key_file), "certificate_file": str(cert_file)}]
            },
            "roles": {
                "passthrough": {"arn": f"arn:aws:iam::{ACCOUNT}:role/bench", "via": "idp"},
                "issued": {
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/bench-issued",
                    "session_tags": {"Department": "{department}", "Repository": "{repository}"},
                    "transitive_tags": ["Department"],
                    "source_identity": "{actor}",
                },
            },
            "rules": [{"name": "ci", "grant": ["passthrough", "issued"]}],
        }
    )
    claims = {"department": "Platform", "repository": "example-org/app", "actor": "octocat"}
    token = WebIdentityToken("e" * 900, session_name="gh-app")
    identity = Identity(
        "oidc", "ci", "https://token.example.com", "repo:example-org/app", claims,
        dt.datetime.now(dt.UTC), token,
    )  # fmt: skip
    sts = StsClient(config.aws)
    await sts.start()
    http = httpx.AsyncClient(follow_redirects=False, timeout=5.0)  # as the broker's lifespan
    federation = Federation(config.aws)
    issuer = AssertionIssuer.from_config(config)
    exchange = Exchange(config, sts, issuer)
    rows = []
    try:
        grant = next(g for g in map_roles(identity, config).grants if g.name == "issued")
        n, t0 = 2000, time.process_time()
        for _ in range(n):
            issuer.proof(identity, grant, 3600)
        sign_us = (time.process_time() - t0) / n * 1e6
        rows.append(f"sign only (render + build + RSA-SHA256): {sign_us:,.0f} µs CPU each")

        async def worker(phase: str, until: float, count: list[int]) -> None:
            role, console, on_httpx = phase.split(" ")[0], "console" in phase, "httpx" in phase
            while time.perf_counter() < until:
                issued = await exchange.issue(identity, role, Trail("credentials", "bench", None))
                if console:  # a console click: getSigninToken, then the login URL
                    await (
                        httpx_signin_url(http, config.aws, issued.credentials, **CLICK)
                        if on_httpx
                        else federation.signin_url(issued.credentials, **CLICK)
                    )
                count[0] += 1

        phases = (
            "passthrough",
            "issued",
            "passthrough console",
            "passthrough console httpx",
            "issued console",
            "issued console httpx",
        )
        for role in phases + phases:
            warm = time.perf_counter() + 1.0
            await asyncio.gather(*(worker(role, warm, [0]) for _ in range(concurrency)))
            count = [0]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            until = wall0 + seconds
            await asyncio.gather(*(worker(role, until, count) for _ in range(concurrency)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            done = count[0]
            rows.append(
                f"{role:<26} {done:>8,} requests  {done / wall:>9,.0f} req/s  "
                f"{cpu / done * 1e6:>7,.0f} µs CPU/request  ({cpu / wall:.0%} of a core)"
            )
    finally:
        await sts.close()
        await federation.close()
        await http.aclose()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="each measured phase")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--responder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.responder:
        responder(args.responder)
        return 0
    import uvloop

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, __file__, "--responder", str(port)], start_new_session=True
    )
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        with tempfile.TemporaryDirectory() as tmp:
            rows = uvloop.run(
                measure(args.seconds, args.concurrency, f"http://127.0.0.1:{port}/", Path(tmp))
            )
    finally:
        os.killpg(child.pid, 15)
        child.wait(timeout=10)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, concurrency {args.concurrency}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
