"""STS calls per request, with and without the STS protections, under bursts of identical requests.

    .venv/bin/python bench/sts_protection.py [--burst 200] [--rounds 10] [--latency-ms 100]

Requests go through the broker's issuance path (`Exchange.issue`: map, choose, STS) with its
real STS client, over loopback to bench/sts_responder.py in a process of its own. Each
scenario runs with its own client; the baseline (the protection off) runs in the same run,
against the same responder. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::111122223333:role/bench"


@dataclass
class Row:
    scenario: str
    requests: int
    sts_calls: int
    refused: int
    p50_ms: float
    p99_ms: float

    def cells(self) -> list[str]:
        return [
            self.scenario,
            f"{self.requests:,}",
            f"{self.sts_calls:,}",
            f"{self.sts_calls / self.requests:.3f}",
            f"{self.refused:,}",
            f"{self.p50_ms:.2f}",
            f"{self.p99_ms:.2f}",
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"sts_responder exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("sts_responder was not ready in time")


def config(sts_port: int, **aws: Any) -> Any:
    from broker.config import parse_config

    return parse_config(
        {
            "aws": {"sts_endpoint": f"http://127.0.0.1:{sts_port}", **aws},
            "identity_providers": {
                "bench": {
                    "type": "oidc",
                    "issuer": "https://issuer.bench.example",
                    "audiences": ["sts.amazonaws.com"],
                }
            },
            "roles": {"bench": {"arn": ROLE}},
            "rules": [
                {
                    "name": "all",
                    "idp": "bench",
                    "when": {"claim": "sub", "glob": "*"},
                    "grant": "bench",
                }
            ],
        }
    )


def identity(subject: str) -> Any:
    from broker.identity import Identity, WebIdentityToken

    # The responder reads no claims: any JWT-shaped string of a realistic size will do.
    token = ".".join(secrets.token_urlsafe(n) for n in (30, 600, 256))
    return Identity(
        protocol="oidc",
        idp="bench",
        issuer="https://issuer.bench.example",
        subject=subject,
        attributes={"sub": subject},
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        proof=WebIdentityToken(token, subject),
    )


async def scenario(
    name: str,
    sts_port: int,
    rounds: int,
    burst: int,
    who: Callable[[int, int], Any],
    *,
    concurrent: bool = True,
    reuse: bool = False,
    **aws: Any,
) -> Row:
    """`rounds` bursts of `burst` requests; `who(round, i)` is the identity of request i."""
    from broker.audit import Trail
    from broker.aws.sts import StsClient
    from broker.errors import BrokerError
    from broker.exchange import Exchange

    cfg = config(sts_port, **aws)
    sts = StsClient(cfg.aws)
    await sts.start()
    exchange = Exchange(cfg, sts)
    latencies: list[float] = []
    refused = 0

    async def one(ident: Any) -> None:
        nonlocal refused
        start = time.perf_counter()
        try:
            await exchange.issue(ident, None, Trail("bench", "bench", None), reuse=reuse)
        except BrokerError:
            refused += 1
        latencies.append(time.perf_counter() - start)

    try:
        for r in range(rounds):
            people = [who(r, i) for i in range(burst)]
            if concurrent:
                await asyncio.gather(*(one(p) for p in people))
            else:
                for p in people:
                    await one(p)
    finally:
        await sts.close()
    latencies.sort()
    n = len(latencies)
    return Row(
        name,
        n,
        sts.calls,
        refused,
        latencies[n // 2] * 1000,
        latencies[min(n - 1, int(n * 0.99))] * 1000,
    )


async def run(args: argparse.Namespace, sts_port: int) -> list[Row]:
    burst, rounds = args.burst, args.rounds
    # One identity per round, sent `burst` times at once: a deployment's pods starting
    # together, or a CI matrix, all presenting the same token for the same role.
    same = [identity(f"bench-{r}") for r in range(rounds)]
    distinct = [[identity(f"bench-{r}-{i}") for i in range(burst)] for r in range(rounds)]
    polls = [identity(f"poll-{r}") for r in range(rounds)]
    unlimited: dict[str, Any] = {"sts_rate_per_account": None}
    rows = [
        await scenario(
            "identical burst, single flight off (baseline)",
            sts_port,
            rounds,
            burst,
            lambda r, i: same[r],
            sts_single_flight=False,
            **unlimited,
        ),
        await scenario(
            "identical burst, single flight on",
            sts_port,
            rounds,
            burst,
            lambda r, i: same[r],
            **unlimited,
        ),
        await scenario(
            "identical burst, single flight off, default limit",
            sts_port,
            rounds,
            burst,
            lambda r, i: same[r],
            sts_single_flight=False,
        ),
        await scenario(
            "identical burst, single flight on, default limit",
            sts_port,
            rounds,
            burst,
            lambda r, i: same[r],
        ),
        await scenario(
            "distinct burst, single flight on (no sharing possible)",
            sts_port,
            rounds,
            burst,
            lambda r, i: distinct[r][i],
            **unlimited,
        ),
        await scenario(
            "container polls one after another, cache off (baseline)",
            sts_port,
            rounds,
            args.polls,
            lambda r, i: polls[r],
            concurrent=False,
            reuse=True,
            container_cache=False,
        ),
        await scenario(
            "container polls one after another, cache on",
            sts_port,
            rounds,
            args.polls,
            lambda r, i: polls[r],
            concurrent=False,
            reuse=True,
        ),
    ]
    return rows


def table(rows: list[Row]) -> str:
    head = ["scenario", "requests", "STS calls", "calls/request", "refused 503", "p50 ms", "p99 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200, help="identical requests at once")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--polls", type=int, default=20, help="container polls per round")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="STS responder delay")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "sts_responder.py"), "--port", str(port)]
    responder = subprocess.Popen(
        [*argv, "--latency-ms", str(args.latency_ms)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, responder)
        rows = asyncio.run(run(args, port))
    finally:
        os.killpg(responder.pid, signal.SIGTERM)  # its own session: the group holds only it
        responder.wait(5)
    print(
        f"STS responder at {args.latency_ms:g} ms; {args.rounds} rounds of {args.burst} "
        f"requests at once (container polls: {args.rounds} x {args.polls}, one at a time)\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
