"""The fault drill: the broker under load while STS, the IdP, Redis or a replica fails.

    .venv/bin/python bench/faults.py [--seconds 10] [--soak-seconds 600] [--only NAME,...]

Every server runs on 127.0.0.1; every load loop is bounded in requests and time. It prints
one table (answers by class, p99, STS calls per request, lost sessions, replays accepted,
and the target each scenario is held to) and exits 1 if a target is missed. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import uvloop
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benches' helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # broker, tests.peers

from fault_load import (
    CONN_ERROR,
    Answer,
    SignIns,
    Tally,
    acs_op,
    bearer_op,
    browser_op,
    closed_loop,
    open_loop,
    picker_op,
    recorded,
    replay_op,
    sweep,
)
from fault_peers import (
    Footprint,
    cluster_healed,
    footprint,
    haproxy_binary,
    haproxy_config,
    http_get,
    listening,
    peer_errors,
    poll,
    start_cluster,
    start_sentinels,
)
from oidc_exchange import (
    PY,
    UVICORN,
    Processes,
    aligned,
    broker_config,
    cpu_seconds,
    free_port,
    machine_busy,
    say,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
STS_TIMEOUT = 2.0  # aws.sts_timeout_seconds in the drill's configs (the default is 5)
STS_ATTEMPTS = 3  # aws.sts_max_attempts, the default
STORE_SECONDS = 12.0  # a Redis phase runs at least this long: the failover takes seconds
STORE_KILL_AT = 2.0
STORE_RATE = 100.0  # browser requests/s during a Redis phase
ACS_EVERY = 5  # one in five of them a new sign-in
LB_SECONDS = 6.0  # a load-balancer phase runs at least this long
LB_TERM_STS_MS = 200  # STS latency while a replica drains: requests are in flight
LB_TERM_CONCURRENCY = 64
THROTTLE_PCT = 30.0
THROTTLE_TARGET = 0.99
SOAK_GROWTH = 0.10
ORDER = ("sts", "jwks", "sentinel", "cluster", "lb-kill", "lb-term", "soak")


@dataclass
class Row:
    scenario: str
    load: str
    tally: Tally
    target: str
    met: bool
    sts_calls: float | None = None  # STS calls per request
    lost: int | None = None
    replays: int | None = None
    notes: list[str] = field(default_factory=list)
    cpu: float = 0.0  # broker CPU seconds spent on the phase
    after_5xx: int = 0  # 5xx other than 503 in the checks after the phase


class Children(Processes):
    """bench/oidc_exchange.py's process set, with signals for one child and its exit."""

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self._running[name].pid, sig)

    def wait_exit(self, name: str, seconds: float) -> int | None:
        proc = self._running[name]
        try:
            return proc.wait(seconds)
        except Exception:  # still running: the caller reports it
            return None


class Drill:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = Children(tmp)
        self.issuer = ""
        self.tokens: list[str] = []
        self.peak = 0.0
        self.per_core = 0.0  # requests/s one core of broker CPU serves, at peak
        self.rows: list[Row] = []
        self._n = 0

    # -- processes --------------------------------------------------------------------------

    def name(self, base: str) -> str:
        self._n += 1
        return f"{self._n:02d}-{base}"

    @property
    def tokens_file(self) -> Path:
        path = self.tmp / "tokens.txt"
        if not path.exists():
            path.write_text("\n".join(self.tokens) + "\n", encoding="ascii")
        return path

    def start_issuer(self, tokens: int) -> tuple[str, str, list[str]]:
        """bench/issuer.py with `tokens` fresh tokens; (process name, issuer URL, tokens)."""
        port, name = free_port(), self.name("issuer")
        out = self.tmp / f"{name}.tokens"
        argv = [PY, str(BENCH / "issuer.py"), "--port", str(port), "--tokens", str(tokens)]
        self.procs.start(name, [*argv, "--out", str(out)])
        self.procs.wait_ready(name, lambda: out.exists() and listening(port), 180)
        return name, f"http://127.0.0.1:{port}", out.read_text(encoding="ascii").split()

    def start_sts(self, *flags: str) -> tuple[str, int]:
        port, name = free_port(), self.name("sts")
        self.procs.start(name, [PY, str(BENCH / "sts_responder.py"), "--port", str(port), *flags])
        self.procs.wait_ready(name, lambda: listening(port), 30)
        return name, port

    def start_broker(self, data: dict[str, Any], port: int, base: str = "broker") -> str:
        name = self.name(base)
        config = self.tmp / f"{name}.yaml"
        config.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
        argv = [*UVICORN, "--port", str(port), "--factory", "broker.app:app_from_env"]
        self.procs.start(name, argv, env={"BROKER_CONFIG": str(config)}, cwd=self.args.broker_src)
        self.procs.wait_ready(name, lambda: http_get(port, "/readyz")[0] == 200, 60)
        return name

    def oidc_config(
        self, sts_port: int, port: int, issuer: str | None = None, **aws: Any
    ) -> dict[str, Any]:
        data = broker_config(issuer or self.issuer, sts_port, port, self.tmp / "audit.log")
        data["aws"].update({"sts_timeout_seconds": STS_TIMEOUT, **aws})
        return data

    # -- STS --------------------------------------------------------------------------------

    def sts_scenario(
        self,
        scenario: str,
        flags: list[str],
        drive: Callable[[str], tuple[str, Tally]],
        judge: Callable[[Tally], tuple[str, bool]],
        *,
        listening_sts: bool = True,
    ) -> Row:
        if listening_sts:
            sts_name, sts_port = self.start_sts(*flags)
        else:
            sts_name, sts_port = "", free_port()  # nothing listens there
        port = free_port()
        broker = self.start_broker(self.oidc_config(sts_port, port), port)
        try:
            url = f"http://127.0.0.1:{port}/v1/credentials"
            # One exchange first, whatever it answers: the broker fetches the issuer's keys.
            run(closed_loop(bearer_op(url, self.tokens[-1:]), concurrency=1, seconds=30, limit=1))
            calls_before = self.sts_calls(sts_port) if listening_sts else 0
            say(scenario)
            cpu_before = cpu_seconds(self.procs.pid(broker))
            load, tally = drive(url)
            cpu = cpu_seconds(self.procs.pid(broker)) - cpu_before
            target, met = judge(tally)
            row = Row(scenario, load, tally, target, met, cpu=cpu)
            if listening_sts:
                row.sts_calls = (self.sts_calls(sts_port) - calls_before) / max(1, tally.requests)
            if tally.requests:
                row.notes.append(f"broker CPU {cpu / tally.requests * 1e6:,.0f} µs/request")
            return row
        finally:
            self.procs.stop(broker)
            if sts_name:
                self.procs.stop(sts_name)

    @staticmethod
    def sts_calls(port: int) -> int:
        status, body = http_get(port, "/__calls")
        if status != 200:
            raise SystemExit(f"the STS stand-in on {port} did not report its calls")
        return int(body)

    def run_sts(self) -> None:
        s = self.args.seconds
        tokens = self.tokens

        def closed(c: int) -> Callable[[str], tuple[str, Tally]]:
            def drive(url: str) -> tuple[str, Tally]:
                return f"closed loop c={c}", run(
                    closed_loop(bearer_op(url, tokens), concurrency=c, seconds=s)
                )

            return drive

        def all_ok(t: Tally) -> tuple[str, bool]:
            return "100% 2xx", t.requests > 0 and t.ok == t.requests

        def within(ms: float) -> Callable[[Tally], tuple[str, bool]]:
            def judge(t: Tally) -> tuple[str, bool]:
                bound = ms + 500
                ok = t.requests > 0 and t.ok == t.requests and t.p99() * 1000 <= bound
                return f"100% 2xx, p99 ≤ {bound:,.0f} ms", ok

            return judge

        def wrk(url: str) -> tuple[str, Tally]:
            return "wrk -t1 -c64", wrk_peak(url, 64, s, self.tokens_file)

        peak = self.sts_scenario("STS 0 ms (peak)", ["--latency-ms", "0"], wrk, all_ok)
        self.rows.append(peak)
        self.peak = peak.tally.ok / peak.tally.elapsed
        self.per_core = peak.tally.requests / max(peak.cpu, 1e-9)
        peak.notes.append(
            f"peak {self.peak:,.0f} req/s; {self.per_core:,.0f} req/s per core of broker CPU"
        )
        if "sts" not in self.args.only:
            return
        for ms, c in ((100, 64), (1000, 128)):
            flags = ["--latency-ms", str(ms)]
            self.rows.append(self.sts_scenario(f"STS {ms:,} ms", flags, closed(c), within(ms)))

        half = self.peak / 2

        def paced(url: str) -> tuple[str, Tally]:
            op = bearer_op(url, tokens)
            return f"open loop {half:,.0f}/s", run(open_loop(op, rate=half, seconds=s))

        def throttled(t: Tally) -> tuple[str, bool]:
            share = t.ok / max(1, t.requests)
            ok = share >= THROTTLE_TARGET and t.other_5xx == 0 and t.conn_errors == 0
            return f"≥ {THROTTLE_TARGET:.0%} 2xx (got {share:.1%}), zero 500s", ok

        flags = ["--throttle-pct", f"{THROTTLE_PCT:g}"]
        self.rows.append(
            self.sts_scenario(f"STS throttling {THROTTLE_PCT:g}%", flags, paced, throttled)
        )

        def only_503(t: Tally) -> tuple[str, bool]:
            ok = t.requests > 0 and t.unavailable == t.requests
            return "503 only, zero 500s", ok

        self.rows.append(
            self.sts_scenario(
                "STS refusing connections", [], closed(32), only_503, listening_sts=False
            )
        )
        bound = STS_ATTEMPTS * STS_TIMEOUT + 1

        def bounded(t: Tally) -> tuple[str, bool]:
            ok = t.requests > 0 and t.unavailable == t.requests and t.max_latency() <= bound
            return f"503 only, max ≤ {bound:g} s (got {t.max_latency():.1f} s)", ok

        self.rows.append(self.sts_scenario("STS never answering", ["--hang"], closed(32), bounded))

    # -- the IdP's JWKS -----------------------------------------------------------------------

    def run_jwks(self) -> None:
        """Keys fetched, then the issuer killed: cached keys keep working; a token naming a
        key the broker never saw cannot be checked, and must not be a 500."""
        issuer_name, issuer, tokens = self.start_issuer(2_000)
        sts_name, sts_port = self.start_sts()
        port = free_port()
        data = self.oidc_config(sts_port, port, issuer)
        # Ask the dead issuer again after 1 s (the default floor is 30 s), so the drill
        # exercises the failed refresh rather than the floor.
        data["identity_providers"]["bench"]["jwks_min_refresh_seconds"] = 1
        broker = self.start_broker(data, port)
        url = f"http://127.0.0.1:{port}/v1/credentials"
        s = self.args.seconds
        try:
            say("JWKS: warm-up, then the issuer killed")
            warm = run(closed_loop(bearer_op(url, tokens), concurrency=8, seconds=1))
            if warm.ok != warm.requests:
                raise SystemExit(f"JWKS warm-up: {dict(warm.codes)}")
            self.procs.signal(issuer_name, signal.SIGKILL)
            self.procs.wait_exit(issuer_name, 5)
            time.sleep(1.2)  # past the refresh floor
            calls = self.sts_calls(sts_port)
            t = run(closed_loop(bearer_op(url, tokens), concurrency=32, seconds=s))
            row = Row(
                "JWKS down, cached keys",
                "closed loop c=32",
                t,
                "100% 2xx",
                t.requests > 0 and t.ok == t.requests,
                sts_calls=(self.sts_calls(sts_port) - calls) / max(1, t.requests),
            )
            self.rows.append(row)
            stranger = unknown_kid_tokens(issuer, 50)
            calls = self.sts_calls(sts_port)
            t = run(closed_loop(bearer_op(url, stranger), concurrency=8, seconds=s, limit=400))
            self.rows.append(
                Row(
                    "JWKS down, unknown kid",
                    "closed loop c=8",
                    t,
                    "503 only, zero 500s",
                    t.requests > 0 and t.unavailable == t.requests,
                    sts_calls=(self.sts_calls(sts_port) - calls) / max(1, t.requests),
                )
            )
        finally:
            self.procs.stop(broker)
            self.procs.stop(sts_name)
            self.procs.stop(issuer_name)

    # -- Redis --------------------------------------------------------------------------------

    def run_store(self, kind: str) -> None:
        """Browsers signed in, then the store's master (Sentinel) or one shard's master
        (Cluster) killed while browsers load pages and sign in; afterwards every session
        must still load and every accepted Response must be refused as a replay."""
        from saml_acs_http import Signer
        from saml_acs_http import broker_config as saml_config

        from broker.config import parse_config
        from tests.fakes.saml_idp import make_keypair

        workdir = self.tmp / kind
        workdir.mkdir()
        sentinel = kind == "sentinel"
        say(f"starting Redis {'Sentinel' if sentinel else 'Cluster'}")
        topo: Any = start_sentinels(workdir) if sentinel else start_cluster(workdir)
        signer = None
        broker = ""
        try:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            key = make_keypair(self.tmp, f"idp-{kind}")
            data = saml_config(key.cert_pem, port, self.tmp / "audit.log")
            if sentinel:
                data["store"] = {"sentinels": topo.addresses, "service_name": topo.service}
            else:
                data["store"] = {"cluster_nodes": topo.addresses}
            parse_config(data)
            broker = self.start_broker(data, port)
            seconds, kill_at = max(self.args.seconds, STORE_SECONDS), STORE_KILL_AT
            n_load = math.ceil(STORE_RATE * seconds / ACS_EVERY) + 10
            say(f"signing {self.args.sessions + n_load:,} SAML Responses")
            signer = Signer(
                self.tmp,
                (str(key.key_file), str(key.cert_file), key.cert_pem),
                {"broker": base + "/saml/acs"},
                False,
            )
            signed = signer.sign({"broker": self.args.sessions + n_load})["broker"]
            signins = SignIns([f"SAMLResponse={quote(b, safe='')}".encode() for b in signed])
            say(f"signing in {self.args.sessions} browsers")
            before = run(
                closed_loop(
                    acs_op(base, signins), concurrency=8, seconds=60, limit=self.args.sessions
                )
            )
            if len(signins.accepted) != self.args.sessions:
                raise SystemExit(f"{kind}: sign-ins before the kill: {dict(before.codes)}")
            cookies = [cookie for _, cookie in signins.accepted]

            async def kill() -> str:
                if sentinel:
                    old = await asyncio.to_thread(topo.kill_master)
                    began = time.monotonic()
                    with peer_errors("Sentinel failover"):
                        new = await asyncio.to_thread(topo.wait_promoted, old)
                    return (
                        f"master {old} killed; {new} promoted {time.monotonic() - began:.1f}s later"
                    )
                victim = topo.masters[0]
                await asyncio.to_thread(topo.kill, victim)
                began = time.monotonic()
                healed = await asyncio.to_thread(cluster_healed, topo, victim)
                took = f"{time.monotonic() - began:.1f}s later" if healed else "not within 30s"
                return f"master {victim} (slots 0-5460) killed; its replica serves them {took}"

            what = "Sentinel master" if sentinel else "Cluster node"
            scenario = f"Redis {what} killed"
            say(f"{scenario}, {STORE_RATE:g} browser requests/s")
            op = browser_op(base, signins, cookies, ACS_EVERY)
            tally = run(open_loop(op, rate=STORE_RATE, seconds=seconds, actions=[(kill_at, kill)]))
            row = Row(
                scenario,
                f"open loop {STORE_RATE:g}/s, 1 in {ACS_EVERY} a sign-in",
                tally,
                "zero 500s, zero replays, zero sessions lost"
                if sentinel
                else "zero 500s, zero replays",
                False,
            )
            ready = poll(lambda: http_get(port, "/readyz")[0] == 200, 30)
            if not ready:
                row.notes.append("/readyz still 503 30s after the load")
            say(f"checking {len(signins.accepted):,} sessions and replaying their Responses")
            row.lost, row.replays = self.verify(base, signins, row)
            outage = tally.window(503)
            if outage:
                row.notes.append(f"503s from {outage[0]:.1f}s to {outage[1]:.1f}s")
            no_500 = tally.other_5xx + row.after_5xx == 0
            row.met = no_500 and row.replays == 0 and (row.lost == 0 or not sentinel)
            self.rows.append(row)
        finally:
            if signer is not None:
                signer.close()
            if broker:
                self.procs.stop(broker)
            topo.stop()

    def verify(self, base: str, signins: SignIns, row: Row) -> tuple[int, int]:
        """Every session loads (GET / 200 with the picker); every accepted Response, posted
        again, is refused (401 ReplayDetected). Answers of 503 are asked again, twice, 2 s
        apart; a session still not loading then counts as lost."""
        cookies = [cookie for _, cookie in signins.accepted]
        bodies = [signins.bodies[n] for n, _ in signins.accepted]
        pages: dict[int, Answer] = {}
        replays: dict[int, Answer] = {}
        after = Tally()
        todo = list(range(len(cookies)))
        for attempt in range(3):
            if attempt:
                time.sleep(2)
            check = recorded(picker_op(base, cookies), pages)
            t = run(sweep(check, todo))
            after.merge(t)
            todo = [i for i in todo if pages[i].status != 200 or pages[i].code]
            if not any(pages[i].status in (503, CONN_ERROR) for i in todo):
                break
        todo = list(range(len(bodies)))
        for attempt in range(3):
            if attempt:
                time.sleep(2)
            t = run(sweep(recorded(replay_op(base, bodies), replays), todo))
            after.merge(t)
            todo = [i for i in todo if replays[i].status in (503, CONN_ERROR)]
            if not todo:
                break
        lost = sum(1 for a in pages.values() if a.status != 200 or a.code)
        accepted = sum(1 for a in replays.values() if a.status < 400)
        refused = Counter(f"{a.status} {a.code}" for a in replays.values())
        row.notes.append(
            f"after the failover: {len(cookies) - lost:,}/{len(cookies):,} sessions load; "
            f"replayed Responses: {', '.join(f'{k}: {n:,}' for k, n in refused.items())}"
        )
        if after.other_5xx:
            row.notes.append(f"the checks got 5xx other than 503: {dict(after.codes)}")
        row.after_5xx = after.other_5xx
        return lost, accepted

    # -- two replicas behind HAProxy --------------------------------------------------------

    def run_lb(self, sig: int) -> None:
        """Two replicas behind HAProxy; one gets SIGKILL (crash) or SIGTERM (a rolling
        restart) a third of the way into the load."""
        kill = sig == signal.SIGKILL
        latency = 0 if kill else LB_TERM_STS_MS
        sts_name, sts_port = self.start_sts("--latency-ms", str(latency))
        ports = {"a": free_port(), "b": free_port()}
        brokers = {
            k: self.start_broker(self.oidc_config(sts_port, p), p, f"broker-{k}")
            for k, p in ports.items()
        }
        lb_port = free_port()
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text(haproxy_config(lb_port, ports), encoding="utf-8")
        lb = self.name("haproxy")
        self.procs.start(lb, [haproxy_binary(), "-f", str(cfg), "-db"])
        try:
            self.procs.wait_ready(lb, lambda: http_get(lb_port, "/readyz")[0] == 200, 30)
            time.sleep(1)  # both servers pass their first checks
            url = f"http://127.0.0.1:{lb_port}/v1/credentials"
            run(closed_loop(bearer_op(url, self.tokens[:2]), concurrency=2, seconds=30, limit=4))
            seconds = max(self.args.seconds, LB_SECONDS)
            at = seconds / 3
            victim = brokers["a"]

            async def stop_a() -> str:
                began = time.monotonic()
                self.procs.signal(victim, sig)
                code = await asyncio.to_thread(self.procs.wait_exit, victim, 60)
                took = time.monotonic() - began
                what = "SIGKILL" if kill else "SIGTERM"
                return f"{what} to replica a; it exited with {code} after {took:.1f}s"

            calls = self.sts_calls(sts_port)
            op = bearer_op(url, self.tokens)
            if kill:
                rate = self.peak / 2
                scenario, load = "LB: replica SIGKILLed", f"open loop {rate:,.0f}/s"
                say(f"{scenario} at {at:.0f}s")
                tally = run(open_loop(op, rate=rate, seconds=seconds, actions=[(at, stop_a)]))
                target = "zero 500s (other failures reported)"
                met = tally.requests > 0 and tally.statuses[500] == 0
            else:
                scenario = f"LB: replica SIGTERMed, STS {latency} ms"
                load = f"closed loop c={LB_TERM_CONCURRENCY}"
                say(f"{scenario} at {at:.0f}s")
                tally = run(
                    closed_loop(
                        op, concurrency=LB_TERM_CONCURRENCY, seconds=seconds, actions=[(at, stop_a)]
                    )
                )
                # uvicorn raises the signal again once it has shut down gracefully.
                target = "100% 2xx (no request lost), replica shuts down"
                exited = self.procs.wait_exit(victim, 1)
                met = tally.requests > 0 and tally.ok == tally.requests and exited in (0, -sig)
            row = Row(scenario, load, tally, target, met)
            row.sts_calls = (self.sts_calls(sts_port) - calls) / max(1, tally.requests)
            failed = tally.requests - tally.ok
            row.notes.append(f"{failed:,} failed requests")
            log = (self.tmp / f"{lb}.log").read_text(errors="replace").splitlines()
            down = sorted(
                {line.split(" is DOWN")[0].split()[-1] for line in log if " is DOWN" in line}
            )
            if down:
                row.notes.append(f"HAProxy marked down: {', '.join(down)}")
            self.rows.append(row)
        finally:
            self.procs.stop(lb)
            for name in brokers.values():
                self.procs.stop(name)
            self.procs.stop(sts_name)

    # -- soak -------------------------------------------------------------------------------

    def run_soak(self) -> None:
        sts_name, sts_port = self.start_sts()
        port = free_port()
        broker = self.start_broker(self.oidc_config(sts_port, port), port)
        url = f"http://127.0.0.1:{port}/v1/credentials"
        seconds = self.args.soak_seconds
        window = max(5.0, seconds / 10)
        rate = self.peak / 2
        samples: list[tuple[float, Footprint]] = []
        pid = self.procs.pid(broker)

        async def sample() -> str:
            fp = footprint(pid)
            samples.append((time.monotonic(), fp))
            return f"RSS {fp.rss_mb:.1f} MB, {fp.fds} fds"

        try:
            say(f"soak: {rate:,.0f}/s for {seconds:g}s")
            calls = self.sts_calls(sts_port)
            tally = run(
                open_loop(
                    bearer_op(url, self.tokens),
                    rate=rate,
                    seconds=seconds,
                    actions=[(window, sample), (seconds - 0.5, sample)],
                )
            )
            (_, first), (_, last) = samples
            time.sleep(2)  # the load's connections closed
            idle = footprint(pid)
            growth = last.rss_mb / first.rss_mb - 1
            p99_start = tally.p99(0, window) * 1000
            p99_end = tally.p99(seconds - window, seconds) * 1000
            row = Row(
                f"soak {seconds:g}s at half peak",
                f"open loop {rate:,.0f}/s",
                tally,
                f"RSS growth < {SOAK_GROWTH:.0%} (got {growth:+.1%}), 100% 2xx",
                growth < SOAK_GROWTH and tally.ok == tally.requests,
                sts_calls=(self.sts_calls(sts_port) - calls) / max(1, tally.requests),
            )
            row.notes.append(
                f"from {window:g}s to the end: RSS {first.rss_mb:.1f} → {last.rss_mb:.1f} MB, "
                f"fds {first.fds} → {last.fds}, p99 {p99_start:,.1f} → {p99_end:,.1f} ms "
                f"(first and last {window:g}s); 2 s after the load: RSS {idle.rss_mb:.1f} MB, "
                f"{idle.fds} fds"
            )
            self.rows.append(row)
        finally:
            self.procs.stop(broker)
            self.procs.stop(sts_name)

    # -- the table ---------------------------------------------------------------------------

    def table(self) -> str:
        head = ("scenario", "load", "requests", "2xx", "4xx", "503", "other 5xx", "no answer")
        head += ("p99 ms", "STS calls/req", "lost sessions", "replays accepted", "target", "")
        rows = [head]
        for r in self.rows:
            t = r.tally
            rows.append(
                (
                    r.scenario,
                    r.load,
                    f"{t.requests:,}",
                    f"{t.ok:,}",
                    f"{t.client_errors:,}",
                    f"{t.unavailable:,}",
                    f"{t.other_5xx:,}",
                    f"{t.conn_errors:,}",
                    "—" if math.isnan(t.p99()) else f"{t.p99() * 1000:,.0f}",
                    "—" if r.sts_calls is None else f"{r.sts_calls:.2f}",
                    "—" if r.lost is None else str(r.lost),
                    "—" if r.replays is None else str(r.replays),
                    r.target,
                    "PASS" if r.met else "MISS",
                )
            )
        return aligned(rows)

    def details(self) -> str:
        lines = []
        for r in self.rows:
            codes = ", ".join(f"{k}: {n:,}" for k, n in r.tally.codes.most_common(6))
            extra = [*r.tally.notes, *r.notes] + ([f"refusals: {codes}"] if codes else [])
            if extra:
                lines.append(f"- {r.scenario}: " + "; ".join(extra))
        return "\n".join(lines)


def unknown_kid_tokens(issuer: str, n: int) -> list[str]:
    """Well-formed tokens for the right issuer, signed by a key it never published."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return [
        jwt.encode(
            {
                "iss": issuer,
                "aud": "sts.amazonaws.com",
                "sub": f"bench-user-{i:06d}",
                "jti": secrets.token_hex(16),
                "iat": now,
                "nbf": now - 5,
                "exp": now + 3600,
            },
            key,
            algorithm="RS256",
            headers={"kid": "rotated-2"},
        )
        for i in range(n)
    ]


def wrk_peak(url: str, connections: int, seconds: float, tokens: Path) -> Tally:
    """The peak: wrk (one thread), whose load costs a fraction of a Python client's."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    argv += ["-s", str(BENCH / "wrk_faults.lua"), url, "--", str(tokens)]
    argv += [str(random.randrange(1 << 30))]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            r = json.loads(line.removeprefix("WRK_RESULT "))
            tally = Tally(elapsed=r["duration_us"] / 1e6, measured_p99=r["p99_us"] / 1e6)
            for status, n in r["statuses"].items():
                tally.statuses[int(status)] += n
                if not 200 <= int(status) < 300:
                    tally.codes[status] += n
            tally.statuses[CONN_ERROR] += r["no_answer"]
            return tally
    raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def run(coro: Any) -> Tally:
    result: Tally = uvloop.run(coro)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each loaded phase")
    parser.add_argument("--soak-seconds", type=float, default=600.0, help="the soak at half peak")
    parser.add_argument("--tokens", type=int, default=20_000, help="distinct tokens to mint")
    parser.add_argument(
        "--only", default=",".join(ORDER), help=f"scenarios to run, of {', '.join(ORDER)}"
    )
    parser.add_argument(
        "--broker-src",
        type=Path,
        default=ROOT,
        help="run the broker package found in this directory; default: here",
    )
    parser.add_argument(
        "--sessions", type=int, default=100, help="browsers signed in before a Redis kill"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and configs")
    args = parser.parse_args(argv)
    only = args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(ORDER))
    if unknown:
        parser.error(f"--only: unknown scenario(s) {', '.join(unknown)}")
    if not (args.broker_src / "broker" / "app.py").is_file():
        raise SystemExit(f"--broker-src: no broker/app.py under {args.broker_src}")

    started = time.monotonic()
    busy_before = machine_busy()
    tmp = Path(tempfile.mkdtemp(prefix="broker-faults-"))
    drill = Drill(args, tmp)
    try:
        _, drill.issuer, drill.tokens = drill.start_issuer(args.tokens)
        drill.run_sts()  # its first phase always: the peak the others are paced from
        steps: dict[str, Callable[[], None]] = {
            "jwks": drill.run_jwks,
            "sentinel": lambda: drill.run_store("sentinel"),
            "cluster": lambda: drill.run_store("cluster"),
            "lb-kill": lambda: drill.run_lb(signal.SIGKILL),
            "lb-term": lambda: drill.run_lb(signal.SIGTERM),
            "soak": drill.run_soak,
        }
        for scenario in only:
            if scenario in steps:
                steps[scenario]()
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        drill.procs.stop_all()
        if args.keep:
            say(f"logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(drill.table())
    print()
    print(drill.details())
    print()
    print(
        f"{os.cpu_count()} CPUs shared by the load loop, the broker(s), the stand-ins and the "
        f"peers; {args.seconds:g}s per loaded phase; run took {time.monotonic() - started:.0f}s."
    )
    if busy_before > 0.2:
        print(f"Before the run, other processes kept {busy_before:.1f} CPUs busy.")
    return 0 if all(r.met for r in drill.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
