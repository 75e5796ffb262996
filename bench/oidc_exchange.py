"""Load bench for the OIDC exchange (POST /v1/credentials) next to the bare FastAPI ceiling.

    .venv/bin/python bench/oidc_exchange.py [--seconds 10] [--latency-ms 0,100]

Every server runs in its own process on 127.0.0.1 (one uvicorn worker each); wrk (one
thread) drives peak load; an open-loop paced client drives half of peak. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
# The same settings for the broker and the ceiling.
UVICORN = [PY, "-m", "uvicorn", "--workers", "1", "--loop", "uvloop", "--http", "httptools"]
UVICORN += ["--no-access-log", "--log-level", "warning", "--no-server-header"]
UVICORN += ["--no-proxy-headers", "--host", "127.0.0.1"]
TICK = os.sysconf("SC_CLK_TCK")
TARGET_RPS_FAST = 1800  # per worker, STS stand-in at 0 ms
TARGET_RPS_SLOW = 1200  # per worker, STS stand-in at 100 ms
TARGET_P99_HALF_MS = 25.0
WARMUP_SECONDS = 2.0


@dataclass
class Result:
    scenario: str
    load: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_share: float  # of one core, used by the server under test
    cpu_us: float  # server CPU per request
    target: str = ""


class Processes:
    """Children in their own sessions, logs in the run's temp dir, all stopped on exit."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        with (self._logs / f"{name}.log").open("wb") as log:
            self._running[name] = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._running[name]
            if proc.poll() is not None:
                tail = (self._logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"{name} exited with {proc.returncode}:\n{tail}")
            if ready():
                return
            time.sleep(0.05)
        raise SystemExit(f"{name} was not ready within {timeout:.0f}s")

    def pid(self, name: str) -> int:
        return self._running[name].pid

    def stop(self, name: str) -> None:
        proc = self._running.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the group holds only ours
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self._running):
            self.stop(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_busy(seconds: float = 1.0) -> float:
    """CPUs' worth of work being done on the machine right now (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values[:8]) - idle, sum(values[:8])

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


# --- load generators ---------------------------------------------------------------------


def run_wrk(url: str, connections: int, seconds: float, tokens: Path) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    argv += ["-s", str(BENCH / "wrk_tokens.lua"), url, "--", str(tokens)]
    argv += [str(random.randrange(1 << 30))]  # each run starts somewhere else in the tokens
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
            return result
    raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def measure_wrk(
    scenario: str, url: str, connections: int, seconds: float, tokens: Path, server: int
) -> Result:
    run_wrk(url, connections, WARMUP_SECONDS, tokens)
    before = cpu_seconds(server)
    r = run_wrk(url, connections, seconds, tokens)
    cpu = cpu_seconds(server) - before
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    if errors or not r["requests"]:
        raise SystemExit(
            f"{scenario}: {r['requests']} requests, errors {errors} (status = HTTP >= 400): "
            "a fast error path is not a result"
        )
    elapsed = r["duration_us"] / 1e6
    return Result(
        scenario,
        f"wrk -t1 -c{connections}",
        r["requests"] / elapsed,
        r["p50_us"] / 1000,
        r["p99_us"] / 1000,
        cpu / elapsed,
        cpu / r["requests"] * 1e6,
    )


def _paced_child(url: str, tokens: Path, rate: float, seconds: float, conn: Any) -> None:
    import uvloop

    tokens_list = tokens.read_text(encoding="ascii").split()
    conn.send(uvloop.run(_paced(url, tokens_list, rate, seconds)))
    conn.close()


async def _paced(url: str, tokens: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Requests start on a fixed schedule whatever the server does, and latency counts from
    the scheduled start (no coordinated omission), as wrk2 would. The first second warms up."""
    import aiohttp

    offset = random.randrange(len(tokens))
    warmup = 1.0
    total = int(rate * (warmup + seconds))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter() + 0.05
        measure_from = start + warmup

        async def one(token: str, due: float) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with session.post(url, headers=headers, data=b"") as response:
                    await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            if due >= measure_from:
                latencies.append(time.perf_counter() - due)
            statuses[status] += 1

        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(tokens[(offset + i) % len(tokens)], due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        ended = time.perf_counter()
        await asyncio.gather(*pending)
    latencies.sort()
    return {
        "sent": total,
        "count": len(latencies),
        "elapsed": ended - measure_from,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)],
        "statuses": dict(statuses),
    }


def measure_paced(
    scenario: str, url: str, rate: float, seconds: float, tokens: Path, server: int
) -> Result:
    return run_paced(
        scenario, rate, seconds, server, _paced_child, (url, tokens, rate, seconds), ok="200"
    )


def run_paced(
    scenario: str,
    rate: float,
    seconds: float,
    server: int,
    target: Callable[..., None],
    args: tuple[Any, ...],
    *,
    ok: str,
) -> Result:
    """Run an open-loop paced client `target(*args, sender)` in its own process; measure the
    server's CPU meanwhile; refuse the phase if any answer's status is not `ok`."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=target, args=(*args, sender), daemon=True)
    before, started = cpu_seconds(server), time.monotonic()
    child.start()
    try:
        if not receiver.poll(seconds + 60):
            raise SystemExit(f"{scenario}: the paced client did not finish")
        r = receiver.recv()
    finally:
        child.terminate()
        child.join()
    cpu, wall = cpu_seconds(server) - before, time.monotonic() - started
    bad = {s: n for s, n in r["statuses"].items() if s != ok}
    if bad:
        raise SystemExit(f"{scenario}: answers other than {ok}: {bad}: not a result")
    return Result(
        scenario,
        f"open loop {rate:,.0f}/s",
        r["count"] / r["elapsed"],
        r["p50"] * 1000,
        r["p99"] * 1000,
        cpu / wall,
        cpu / r["sent"] * 1e6,
    )


# --- the servers --------------------------------------------------------------------------


def broker_config(
    issuer: str,
    sts_port: int,
    port: int,
    audit: Path,
    sts_transport: str | None = None,
    *,
    unlimited: bool = True,
) -> dict[str, Any]:
    from broker.config import parse_config

    data: dict[str, Any] = {
        "server": {"base_url": f"http://127.0.0.1:{port}"},
        "aws": {"sts_endpoint": f"http://127.0.0.1:{sts_port}/"},
        "audit": {"path": str(audit)},
        "identity_providers": {
            "bench": {
                "type": "oidc",
                "issuer": issuer,
                "audiences": ["sts.amazonaws.com"],
                "algorithms": ["RS256"],
            }
        },
        "roles": {"bench": {"arn": "arn:aws:iam::111122223333:role/bench"}},
        "rules": [
            {
                "name": "bench-users",
                "idp": "bench",
                "when": {"claim": "sub", "glob": "bench-user-*"},
                "grant": ["bench"],
            }
        ],
    }
    if sts_transport is not None:  # only when asked: older checkouts don't know the key
        data["aws"]["sts_transport"] = sts_transport
    if unlimited:
        # The bench's STS stand-in is not an AWS account: measure the broker, not the
        # per-account limit that keeps a real account under STS's 600 requests/s.
        data["aws"]["sts_rate_per_account"] = None
    parse_config(data)  # fail here, with the key named, rather than in the child's log
    return data


def preflight(url: str, token: str) -> None:
    """One exchange must return 200 with credentials before anything is measured."""
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"preflight: HTTP {exc.code}: {exc.read()[:500]!r}") from None
    if not body.get("Credentials", {}).get("AccessKeyId"):
        raise SystemExit(f"preflight: no credentials in {body!r}")


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = Processes(tmp)
        self.tokens = tmp / "tokens.txt"
        self.issuer = ""

    def start_issuer(self) -> None:
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        argv = [PY, str(BENCH / "issuer.py"), "--port", str(port)]
        argv += ["--tokens", str(self.args.tokens), "--out", str(self.tokens)]
        self.procs.start("issuer", argv)
        say(f"minting {self.args.tokens:,} RS256 tokens")
        self.procs.wait_ready("issuer", lambda: self.tokens.exists() and port_open(port), 180)

    def ceiling(self) -> Result:
        port = free_port()
        argv = [*UVICORN, "--port", str(port), "--app-dir", str(BENCH), "ceiling:app"]
        self.procs.start("ceiling", argv)
        self.procs.wait_ready("ceiling", lambda: port_open(port), 30)
        say("measuring the bare FastAPI ceiling")
        try:
            url = f"http://127.0.0.1:{port}/v1/credentials"
            result = measure_wrk(
                "FastAPI ceiling",
                url,
                self.args.connections,
                self.args.seconds,
                self.tokens,
                self.procs.pid("ceiling"),
            )
        finally:
            self.procs.stop("ceiling")
        result.load += " (same script)"
        return result

    def exchange(self, latency_ms: float) -> list[Result]:
        sts_port, port = free_port(), free_port()
        argv = [PY, str(BENCH / "sts_responder.py"), "--port", str(sts_port)]
        self.procs.start("sts", [*argv, "--latency-ms", f"{latency_ms:g}"])
        config = self.tmp / f"broker-{latency_ms:g}.yaml"
        data = broker_config(
            self.issuer,
            sts_port,
            port,
            self.tmp / "audit.log",
            self.args.sts_transport,
            unlimited=self.args.broker_src == ROOT,  # older checkouts have no such key
        )
        config.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
        argv = [*UVICORN, "--port", str(port), "--factory", "broker.app:app_from_env"]
        env = {"BROKER_CONFIG": str(config)}
        self.procs.start("broker", argv, env=env, cwd=self.args.broker_src)
        self.procs.wait_ready("sts", lambda: port_open(sts_port), 30)
        self.procs.wait_ready("broker", lambda: port_open(port), 30)
        url = f"http://127.0.0.1:{port}/v1/credentials"
        broker = self.procs.pid("broker")
        try:
            preflight(url, self.tokens.read_text(encoding="ascii").split("\n", 1)[0])
            say(f"measuring the exchange at peak, STS stand-in at {latency_ms:g} ms")
            conns = self.args.connections if latency_ms == 0 else self.args.slow_connections
            name = f"exchange, STS {latency_ms:g} ms"
            peak = measure_wrk(name, url, conns, self.args.seconds, self.tokens, broker)
            results = [peak]
            if latency_ms == 0:
                peak.target = verdict(peak.rps >= TARGET_RPS_FAST, f">= {TARGET_RPS_FAST:,}/s")
                say(f"measuring latency at half of peak ({peak.rps / 2:,.0f}/s, open loop)")
                half = measure_paced(
                    f"{name}, half peak",
                    url,
                    peak.rps / 2,
                    self.args.seconds,
                    self.tokens,
                    broker,
                )
                half.target = verdict(
                    half.p99_ms <= TARGET_P99_HALF_MS, f"p99 <= {TARGET_P99_HALF_MS:g} ms"
                )
                results.append(half)
            elif latency_ms == 100:
                peak.target = verdict(peak.rps >= TARGET_RPS_SLOW, f">= {TARGET_RPS_SLOW:,}/s")
            return results
        finally:
            self.procs.stop("broker")
            self.procs.stop("sts")


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def verdict(ok: bool, text: str) -> str:
    return f"{'PASS' if ok else 'MISS'} {text}"


def table(results: list[Result]) -> str:
    ceiling = results[0].rps
    head = ("scenario", "load", "req/s", "p50 ms", "p99 ms", "ceiling req/s", "ratio")
    head += ("server CPU", "CPU µs/req", "target")
    rows = [head]
    for r in results:
        rows.append(
            (
                r.scenario,
                r.load,
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                f"{ceiling:,.0f}",
                f"{r.rps / ceiling:.2f}",
                f"{r.cpu_share:.0%}",
                f"{r.cpu_us:,.0f}",
                r.target,
            )
        )
    return aligned(rows)


def aligned(rows: list[tuple[str, ...]]) -> str:
    """Rows as columns padded to width, a rule under the first (the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured phase")
    parser.add_argument("--latency-ms", default="0,100", help="STS stand-in latencies, ms")
    parser.add_argument("--tokens", type=int, default=30_000, help="distinct tokens to mint")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections at 0 ms")
    parser.add_argument(
        "--slow-connections", type=int, default=300, help="wrk connections when STS adds latency"
    )
    parser.add_argument(
        "--broker-src",
        type=Path,
        default=ROOT,
        help="run the broker package found in this directory (to A/B a change); default: here",
    )
    parser.add_argument(
        "--sts-transport",
        choices=["native", "httpx"],
        help="the broker's STS transport (aws.sts_transport); default: the config's default",
    )
    args = parser.parse_args(argv)
    if not (args.broker_src / "broker" / "app.py").is_file():
        raise SystemExit(f"--broker-src: no broker/app.py under {args.broker_src}")
    latencies = [float(x) for x in args.latency_ms.split(",") if x.strip()]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    started = time.monotonic()
    busy_before = machine_busy()
    tmp = Path(tempfile.mkdtemp(prefix="broker-bench-"))
    bench = Bench(args, tmp)
    try:
        bench.start_issuer()
        results = [bench.ceiling()]
        for latency in latencies:
            results += bench.exchange(latency)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        bench.procs.stop_all()
        audit = tmp / "audit.log"
        audit_lines = audit.read_bytes().count(b"\n") if audit.exists() else 0
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(table(results))
    print()
    print(
        f"{os.cpu_count()} CPUs shared by wrk/the paced client, the server under test, the STS "
        f"stand-in and the issuer; {args.seconds:g}s per phase after {WARMUP_SECONDS:g}s warm-up; "
        f"run took {time.monotonic() - started:.0f}s; {audit_lines:,} audit lines written."
    )
    if busy_before > 0.2:
        print(
            f"WARNING: before the run, other processes kept {busy_before:.1f} CPUs busy: "
            "these figures understate the broker."
        )
    return 0 if all("MISS" not in r.target for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
