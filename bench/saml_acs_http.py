"""Load bench for the SAML ACS (POST /saml/acs) next to stock python3-saml, in the same run.

    .venv/bin/python bench/saml_acs_http.py [--seconds 10]

Every server runs in its own process on 127.0.0.1 (one uvicorn worker each, the same flags as
bench/oidc_exchange.py); wrk (one thread) drives peak load; an open-loop paced client drives
half of peak. Every request carries its own freshly signed SAML Response, used once. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request  # at module level: FastAPI resolves the handler's annotation here

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the OIDC bench's helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # broker, tests.fakes.saml_idp

from oidc_exchange import (  # the process, port, CPU and load helpers of the OIDC bench
    UVICORN,
    WARMUP_SECONDS,
    Processes,
    Result,
    aligned,
    cpu_seconds,
    free_port,
    machine_busy,
    port_open,
    run_paced,
    say,
    verdict,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TARGET_RPS = 400  # validated responses/s, one worker
TARGET_P99_HALF_MS = 50.0
ENTITY_ID = "https://idp.example.test/saml"
ACCOUNT = "123456789012"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/TestIdP"
ROLES = {
    "developer": f"arn:aws:iam::{ACCOUNT}:role/Developer",
    "readonly": f"arn:aws:iam::{ACCOUNT}:role/ReadOnly",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SIZING_MARGIN = 1.3  # bodies signed beyond the estimated need
HTTP_SHARE = 0.75  # HTTP rate / in-process rate, for the first signing only
CHUNK = 50  # responses per task handed to a signing process
STOCK_ENV = "BENCH_STOCK_SAML"


class Exhausted(Exception):
    """wrk ran out of bodies: it still divides by the full duration, so the run is void."""

    def __init__(self, sent: int, seconds: float) -> None:
        super().__init__(f"ran out after {sent:,} bodies in {seconds:.2f}s")
        self.rate = sent / max(seconds, 0.01)


# --- signing: the pysaml2 test IdP, on every core -------------------------------------------

_IDPS: dict[str, Any] = {}  # in each signing process: target -> TestIdp


def _libxmlsec1_signer(key_file: str) -> Any:
    """pysaml2's `sign_statement`, done in-process by libxmlsec1 (python-xmlsec) instead of
    two runs of the xmlsec1 binary (`--version`, then `--sign`): same library, same
    signature, ~20x cheaper (~3.5 ms a response instead of ~70 ms)."""
    import xmlsec
    from lxml import etree

    key = xmlsec.Key.from_file(key_file, xmlsec.constants.KeyDataFormatPem)

    def sign_statement(statement: str | bytes, node_name: str, key_file: str, node_id: str) -> str:
        root = etree.fromstring(statement.encode() if isinstance(statement, str) else statement)
        xmlsec.tree.add_ids(root, ["ID"])  # what xmlsec1's --id-attr:ID does
        node = root if root.get("ID") == node_id else root.xpath("//*[@ID=$i]", i=node_id)[0]
        signature = xmlsec.tree.find_child(node, xmlsec.constants.NodeSignature)
        ctx = xmlsec.SignatureContext()
        ctx.key = key
        ctx.sign(signature)
        return str(etree.tostring(root).decode())

    return sign_statement


def _signer_init(tmp: str, key: tuple[str, str, str], acs: dict[str, str], binary: bool) -> None:
    from tests.fakes.saml_idp import Keypair, TestIdp

    keypair = Keypair(Path(key[0]), Path(key[1]), key[2])
    for target, acs_url in acs.items():
        idp = TestIdp(Path(tempfile.mkdtemp(dir=tmp)), acs_url=acs_url, entity_id=ENTITY_ID)
        idp.key = keypair  # one signing key for every process and both servers
        if not binary:
            idp.server.sec.sign_statement = _libxmlsec1_signer(key[0])
        _IDPS[target] = idp


def _sign(task: tuple[str, int, int]) -> tuple[str, list[str]]:
    target, first, n = task
    idp = _IDPS[target]
    pairs = [f"{arn},{PROVIDER}" for arn in ROLES.values()]
    return target, [idp.b64(name_id=f"user{first + i}@example.com", roles=pairs) for i in range(n)]


@dataclass
class Bodies:
    """One url-encoded form body per line of a file, each handed out once, in order."""

    path: Path
    offsets: list[int] = field(default_factory=list)
    used: int = 0
    size: int = 0

    def append(self, responses: list[str]) -> None:
        with self.path.open("ab") as f:
            for b64 in responses:
                line = f"SAMLResponse={quote(b64, safe='')}\n".encode("ascii")
                self.offsets.append(self.size)
                self.size += len(line)
                f.write(line)

    @property
    def left(self) -> int:
        return len(self.offsets) - self.used

    @property
    def offset(self) -> int:
        return self.offsets[self.used] if self.left else self.size

    def take_one(self) -> bytes:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            self.used += 1
            return f.readline().rstrip(b"\n")


class Signer:
    """A pool of signing processes (all cores) that stays up for top-ups."""

    def __init__(self, tmp: Path, key: tuple[str, str, str], acs: dict[str, str], binary: bool):
        self._pool = multiprocessing.get_context("fork").Pool(
            os.cpu_count() or 1, _signer_init, (str(tmp), key, acs, binary)
        )
        self._counter = 0
        self.seconds = 0.0
        self.signed = 0

    def sign(self, wanted: dict[str, int]) -> dict[str, list[str]]:
        tasks = []
        for target, n in wanted.items():
            for start in range(0, n, CHUNK):
                tasks.append((target, self._counter + start, min(CHUNK, n - start)))
            self._counter += n
        out: dict[str, list[str]] = {target: [] for target in wanted}
        started = time.monotonic()
        for target, responses in self._pool.imap_unordered(_sign, tasks):
            out[target] += responses
        self.seconds += time.monotonic() - started
        self.signed += sum(wanted.values())
        return out

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


# --- the stock python3-saml server ----------------------------------------------------------


def stock_app_from_env() -> Any:
    """`uvicorn --factory saml_acs_http:stock_app_from_env`: FastAPI, one POST /saml/acs that
    runs stock python3-saml with its default security settings, as bench/saml_acs.py does."""
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse, RedirectResponse, Response
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    conf = json.loads(Path(os.environ[STOCK_ENV]).read_text(encoding="utf-8"))
    settings = OneLogin_Saml2_Settings(conf["settings"])
    request_data = conf["request_data"]
    app = FastAPI()

    @app.post("/saml/acs")
    async def acs(request: Request) -> Response:
        form = await request.form()
        response = OneLogin_Saml2_Response(settings, form.get("SAMLResponse"))
        if not response.is_valid(request_data):
            return PlainTextResponse(str(response.get_error()), status_code=403)
        return RedirectResponse("/", status_code=303)

    return app


def stock_conf(cert_pem: str, acs_url: str) -> dict[str, Any]:
    from tests.fakes.saml_idp import AUDIENCE

    acs = urlsplit(acs_url)
    return {
        "settings": {
            "sp": {"entityId": AUDIENCE, "assertionConsumerService": {"url": acs_url}},
            "idp": {
                "entityId": ENTITY_ID,
                "singleSignOnService": {"url": ENTITY_ID + "/sso"},
                "x509cert": cert_pem,
            },
        },
        "request_data": {"https": "off", "http_host": acs.netloc, "script_name": acs.path},
    }


def broker_config(cert_pem: str, port: int, audit: Path) -> dict[str, Any]:
    from broker.config import parse_config

    data = {
        "server": {
            "base_url": f"http://127.0.0.1:{port}",
            "session_secret": secrets.token_urlsafe(32),
        },
        "aws": {"sts_endpoint": "http://127.0.0.1:9/"},  # the ACS never calls STS
        "store": {"url": "memory://"},
        "audit": {"path": str(audit)},
        "identity_providers": {
            "bench": {
                "type": "saml",
                "entity_id": ENTITY_ID,
                "sso_url": ENTITY_ID + "/sso",
                "certificates": [cert_pem],
                "idp_initiated": True,
            }
        },
        "accounts": {ACCOUNT: {"name": "Bench"}},
        "roles": {name: {"arn": arn} for name, arn in ROLES.items()},
        "rules": [{"name": "bench-users", "idp": "bench", "grant": sorted(ROLES)}],
    }
    config = parse_config(data)  # fail here, with the key named, rather than in the child's log
    assert config.server.base_url + "/saml/acs" == f"http://127.0.0.1:{port}/saml/acs"
    return data


def calibrate(
    cert_pem: str, acs: dict[str, str], samples: dict[str, list[str]], seconds: float
) -> dict[str, float]:
    """Validated responses/s in this process, ours and stock: an upper bound for HTTP, used
    only to size how many responses to sign."""
    import datetime as dt

    import httpx
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    from broker.config import SamlIdp, ServerSettings
    from broker.saml.settings import load_idps, sp_endpoints
    from broker.saml.verify import SamlVerifier
    from broker.store import MemoryStore

    rates: dict[str, float] = {}
    conf = SamlIdp(
        type="saml", entity_id=ENTITY_ID, sso_url=ENTITY_ID + "/sso", certificates=[cert_pem]
    )

    async def runtimes(sp: Any) -> Any:
        async with httpx.AsyncClient() as client:
            return await load_idps({"bench": conf}, sp, client)

    sp = sp_endpoints(ServerSettings(base_url=acs["broker"].removesuffix("/saml/acs")))
    verifier = SamlVerifier(asyncio.run(runtimes(sp)), sp, partition="aws", store=MemoryStore())
    stock = stock_conf(cert_pem, acs["stock"])
    settings = OneLogin_Saml2_Settings(stock["settings"])

    def ours(b64: str) -> None:
        verifier.verify_document(b64, now=dt.datetime.now(dt.UTC))

    def theirs(b64: str) -> None:
        response = OneLogin_Saml2_Response(settings, b64)
        if not response.is_valid(stock["request_data"]):
            raise SystemExit(f"stock python3-saml refused a good response: {response.get_error()}")

    for target, check in (("broker", ours), ("stock", theirs)):
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for b64 in samples[target]:
                check(b64)
            done += len(samples[target])
        rates[target] = done / (time.perf_counter() - started)
    return rates


# --- load generators ------------------------------------------------------------------------


def run_wrk(url: str, connections: int, seconds: float, bodies: Bodies, cookie: bool) -> dict:
    if not bodies.left:
        raise Exhausted(0, 1.0)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    argv += ["-s", str(BENCH / "wrk_saml.lua"), url, "--", str(bodies.path)]
    argv += [str(bodies.offset), str(bodies.left), "1" if cookie else "0"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
            bodies.used += result["sent"]  # each went to the server: never again
            if result["exhausted"]:
                raise Exhausted(result["sent"], result["exhausted_after"])
            return result
    raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def _paced_child(
    url: str, path: Path, offset: int, total: int, rate: float, seconds: float, conn: Any
) -> None:
    import uvloop

    with path.open("rb") as f:
        f.seek(offset)
        bodies = [f.readline().rstrip(b"\n") for _ in range(total)]
    conn.send(uvloop.run(_paced(url, bodies, rate, seconds)))
    conn.close()


async def _paced(url: str, bodies: list[bytes], rate: float, seconds: float) -> dict[str, Any]:
    """Requests start on a fixed schedule whatever the server does, and latency counts from
    the scheduled start (no coordinated omission), as wrk2 would. The first second warms up.
    The same loop as bench/oidc_exchange.py, with a form body per request."""
    import aiohttp

    warmup = 1.0
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter() + 0.05
        measure_from = start + warmup

        async def one(body: bytes, due: float) -> None:
            try:
                async with session.post(
                    url, data=body, headers=FORM, allow_redirects=False
                ) as response:
                    await response.read()
                    status = str(response.status)
                    if status == "303" and "Set-Cookie" not in response.headers:
                        status = "303 without Set-Cookie"
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            if due >= measure_from:
                latencies.append(time.perf_counter() - due)
            statuses[status] += 1

        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(body, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        ended = time.perf_counter()
        await asyncio.gather(*pending)
    latencies.sort()
    return {
        "sent": len(bodies),
        "count": len(latencies),
        "elapsed": ended - measure_from,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)],
        "statuses": dict(statuses),
    }


def preflight(port: int, body: bytes, cookie: bool) -> str:
    """One sign-in must answer 303 (with Set-Cookie for the broker) before any measurement."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/saml/acs", body=body, headers=FORM)
        response = conn.getresponse()
        text = response.read()
    finally:
        conn.close()
    if response.status != 303 or (cookie and response.getheader("Set-Cookie") is None):
        raise SystemExit(f"preflight: HTTP {response.status}, expected a 303: {text[:500]!r}")
    return str(response.getheader("Location"))


# --- the run --------------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # "broker" or "stock"
    port: int
    bodies: Bodies
    cookie: bool  # a success carries Set-Cookie

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/saml/acs"


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = Processes(tmp)
        self.signer: Signer | None = None
        self.servers = {
            name: Server(name, free_port(), Bodies(tmp / f"{name}.bodies"), name == "broker")
            for name in ("broker", "stock")
        }
        self.cert_pem = ""
        self.rates: dict[str, float] = {}
        self.notes: list[str] = []

    def sign(self, wanted: dict[str, int]) -> None:
        assert self.signer is not None
        wanted = {k: v for k, v in wanted.items() if v > 0}
        if not wanted:
            return
        for name, responses in self.signer.sign(wanted).items():
            self.servers[name].bodies.append(responses)

    def prepare(self) -> None:
        from tests.fakes.saml_idp import make_keypair

        key = make_keypair(self.tmp, "idp")
        self.cert_pem = key.cert_pem
        acs = {name: s.url for name, s in self.servers.items()}
        signer = "the xmlsec1 binary" if self.args.xmlsec1_binary else "libxmlsec1 in-process"
        say(f"signing with the pysaml2 test IdP ({signer}) on {os.cpu_count()} processes")
        self.signer = Signer(
            self.tmp,
            (str(key.key_file), str(key.cert_file), key.cert_pem),
            acs,
            self.args.xmlsec1_binary,
        )
        # Verified in this process only, so never sent to a server, and not in the pools.
        samples = self.signer.sign({"broker": 24, "stock": 24})
        self.rates = calibrate(self.cert_pem, acs, samples, 0.6)
        s, cap = self.args.seconds, self.args.max_responses
        need = {
            # warm-up + peak at the in-process rate (an upper bound), then half of that
            "broker": self.rates["broker"] * ((WARMUP_SECONDS + s) + (1 + s) / 2),
            "stock": self.rates["stock"] * (WARMUP_SECONDS + s),
        }
        # The in-process rate (a few responses, cache-hot) overstates HTTP by 1.3-1.8x here;
        # ensure() tops up from the warm-up's measured rate if this is short.
        wanted = {k: min(cap - 1, math.ceil(v * HTTP_SHARE)) for k, v in need.items()}
        say(
            f"in-process calibration: ours {self.rates['broker']:,.0f}/s, stock "
            f"{self.rates['stock']:,.0f}/s; signing {wanted['broker']:,} + {wanted['stock']:,}"
        )
        self.sign(wanted)
        assert self.signer is not None
        say(
            f"signed {self.signer.signed:,} responses in {self.signer.seconds:.1f}s "
            f"({self.signer.seconds / self.signer.signed * 1e3 * (os.cpu_count() or 1):.1f} "
            "ms each per core)"
        )

    def ensure(self, server: Server, count: int, why: str) -> None:
        short = count - server.bodies.left
        if short > 0:
            more = math.ceil(short * 1.05)
            if len(server.bodies.offsets) + more > self.args.max_responses:
                raise SystemExit(
                    f"{server.name}: {why} needs {more:,} more responses, beyond "
                    f"--max-responses {self.args.max_responses:,}"
                )
            started = time.monotonic()
            self.sign({server.name: more})
            self.notes.append(
                f"{server.name}: signed {more:,} more for {why} ({time.monotonic() - started:.1f}s)"
            )

    def measure_peak(self, scenario: str, server: Server, pid: int) -> Result:
        conns, s = self.args.connections, self.args.seconds
        for attempt in (1, 2):
            try:
                warm = run_wrk(server.url, conns, WARMUP_SECONDS, server.bodies, server.cookie)
                check(scenario + " (warm-up)", warm)
                rate = warm["requests"] / (warm["duration_us"] / 1e6)
                self.ensure(server, math.ceil(rate * s * SIZING_MARGIN), "the peak phase")
                before = cpu_seconds(pid)
                r = run_wrk(server.url, conns, s, server.bodies, server.cookie)
                cpu = cpu_seconds(pid) - before
                break
            except Exhausted as exc:
                if attempt == 2:
                    raise SystemExit(f"{scenario}: ran out of signed responses twice") from None
                say(f"{scenario}: {exc}; signing more and measuring again")
                need = exc.rate * (WARMUP_SECONDS + s) * SIZING_MARGIN
                self.ensure(server, math.ceil(need), f"{scenario}, second try")
        check(scenario, r)
        elapsed = r["duration_us"] / 1e6
        return Result(
            scenario,
            f"wrk -t1 -c{conns}",
            r["requests"] / elapsed,
            r["p50_us"] / 1000,
            r["p99_us"] / 1000,
            cpu / elapsed,
            cpu / r["requests"] * 1e6,
        )

    def measure_half(self, scenario: str, server: Server, rate: float, pid: int) -> Result:
        s = self.args.seconds
        total = int(rate * (1.0 + s))  # the paced client's first second is warm-up
        self.ensure(server, total, "the half-peak phase")
        offset = server.bodies.offset
        server.bodies.used += total
        return run_paced(
            scenario,
            rate,
            s,
            pid,
            _paced_child,
            (server.url, server.bodies.path, offset, total, rate, s),
            ok="303",
        )

    def broker(self) -> list[Result]:
        server = self.servers["broker"]
        config = self.tmp / "broker.yaml"
        data = broker_config(self.cert_pem, server.port, self.tmp / "audit.log")
        config.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
        argv = [*UVICORN, "--port", str(server.port), "--factory", "broker.app:app_from_env"]
        self.procs.start(
            "broker", argv, env={"BROKER_CONFIG": str(config)}, cwd=self.args.broker_src
        )
        self.procs.wait_ready("broker", lambda: port_open(server.port), 30)
        pid = self.procs.pid("broker")
        try:
            where = preflight(server.port, server.bodies.take_one(), cookie=True)
            self.notes.append(f"broker: a sign-in answers 303 to {where} with Set-Cookie")
            say("measuring the broker ACS at peak")
            peak = self.measure_peak("broker ACS", server, pid)
            peak.target = verdict(peak.rps >= TARGET_RPS, f">= {TARGET_RPS}/s")
            say(f"measuring latency at half of peak ({peak.rps / 2:,.0f}/s, open loop)")
            half = self.measure_half("broker ACS, half peak", server, peak.rps / 2, pid)
            half.target = verdict(
                half.p99_ms <= TARGET_P99_HALF_MS, f"p99 <= {TARGET_P99_HALF_MS:g} ms"
            )
            return [peak, half]
        finally:
            self.procs.stop("broker")

    def stock(self) -> Result:
        server = self.servers["stock"]
        conf = self.tmp / "stock.json"
        conf.write_text(json.dumps(stock_conf(self.cert_pem, server.url)), encoding="utf-8")
        argv = [*UVICORN, "--port", str(server.port), "--app-dir", str(BENCH)]
        argv += ["--factory", "saml_acs_http:stock_app_from_env"]
        self.procs.start("stock", argv, env={STOCK_ENV: str(conf)})
        self.procs.wait_ready("stock", lambda: port_open(server.port), 30)
        try:
            preflight(server.port, server.bodies.take_one(), cookie=False)
            say("measuring stock python3-saml at peak")
            return self.measure_peak("stock python3-saml", server, self.procs.pid("stock"))
        finally:
            self.procs.stop("stock")

    def close(self) -> None:
        if self.signer is not None:
            self.signer.close()
        self.procs.stop_all()


def check(scenario: str, r: dict[str, Any]) -> None:
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout", "bad") if r[k]}
    if errors or not r["requests"]:
        raise SystemExit(
            f"{scenario}: {r['requests']} answers, errors {errors}; first bad answer: "
            f"{r['first_bad']!r}. Anything but a 303 (with Set-Cookie for the broker) fails."
        )


def table(results: list[Result]) -> str:
    head = ("scenario", "load", "req/s", "p50 ms", "p99 ms", "server CPU", "CPU µs/req")
    head += ("target",)
    rows = [head]
    for r in results:
        rows.append(
            (
                r.scenario,
                r.load,
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                f"{r.cpu_share:.0%}",
                f"{r.cpu_us:,.0f}",
                r.target,
            )
        )
    return aligned(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each measured phase (whole s)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--max-responses", type=int, default=25_000, help="cap on responses signed per server"
    )
    parser.add_argument(
        "--xmlsec1-binary",
        action="store_true",
        help="sign through pysaml2's own xmlsec1-binary backend (~20x slower to prepare)",
    )
    parser.add_argument(
        "--broker-src",
        type=Path,
        default=ROOT,
        help="run the broker package found in this directory (to A/B a change); default: here",
    )
    args = parser.parse_args(argv)
    if not (args.broker_src / "broker" / "app.py").is_file():
        raise SystemExit(f"--broker-src: no broker/app.py under {args.broker_src}")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    started = time.monotonic()
    busy_before = machine_busy()
    tmp = Path(tempfile.mkdtemp(prefix="broker-bench-saml-"))
    bench = Bench(args, tmp)
    try:
        bench.prepare()
        results = bench.broker()
        results.append(bench.stock())
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        bench.close()
        audit = tmp / "audit.log"
        audit_lines = audit.read_bytes().count(b"\n") if audit.exists() else 0
        used = {name: (s.bodies.used, len(s.bodies.offsets)) for name, s in bench.servers.items()}
        shutil.rmtree(tmp, ignore_errors=True)

    ours, stock = results[0], results[-1]
    print()
    print(table(results))
    print()
    print(
        f"ratio ours/stock at peak: {ours.rps / stock.rps:.2f}x req/s, "
        f"{stock.cpu_us / ours.cpu_us:.2f}x less CPU per validated response."
    )
    assert bench.signer is not None
    print(
        f"Signed {bench.signer.signed:,} responses in {bench.signer.seconds:.1f}s "
        f"on {os.cpu_count()} processes (each used at most once; used/signed: broker "
        f"{used['broker'][0]:,}/{used['broker'][1]:,}, stock {used['stock'][0]:,}/"
        f"{used['stock'][1]:,}; in-process calibration ours {bench.rates['broker']:,.0f}/s, "
        f"stock {bench.rates['stock']:,.0f}/s)."
    )
    for note in bench.notes:
        print(note)
    print(
        f"{os.cpu_count()} CPUs shared by wrk/the paced client and the server under test; "
        f"{args.seconds:g}s per phase after {WARMUP_SECONDS:g}s warm-up; run took "
        f"{time.monotonic() - started:.0f}s; {audit_lines:,} audit lines written."
    )
    if busy_before > 0.2:
        print(
            f"WARNING: before the run, other processes kept {busy_before:.1f} CPUs busy: "
            "these figures understate both servers."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
