"""The fault drill's load: bounded closed or open loops of aiohttp requests, tallied by answer.

Every loop stops by itself: a closed loop after `seconds` or `limit` requests, an open loop
after `rate * seconds` requests; each request gives up after `REQUEST_TIMEOUT` seconds. An
open loop starts requests on a fixed schedule whatever the server does and counts latency
from the scheduled start (no coordinated omission), as bench/oidc_exchange.py's paced client.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

REQUEST_TIMEOUT = 30.0
CONN_ERROR = 0  # the status recorded when no HTTP answer came back


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # CONN_ERROR when the request got no HTTP answer
    code: str = ""  # the problem document's `code`, or the client exception's name


# One request: given the client session and the request's index, send it and classify it.
Op = Callable[[aiohttp.ClientSession, int], Awaitable[Answer]]
Action = Callable[[], Awaitable[object]]


@dataclass
class Tally:
    """What came back: counts by status and by (status, code), latency by start time."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    started: array[float] = field(default_factory=lambda: array("d"))  # offset from the start
    latency: array[float] = field(default_factory=lambda: array("d"))  # seconds
    status: array[int] = field(default_factory=lambda: array("H"))
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)
    # When another tool (wrk) measured the requests, its own p99, in seconds.
    measured_p99: float | None = None

    def add(self, answer: Answer, started: float, latency: float) -> None:
        self.statuses[answer.status] += 1
        if answer.code or not 200 <= answer.status < 400:
            self.codes[f"{answer.status or 'conn'} {answer.code}".strip()] += 1
        self.started.append(started)
        self.latency.append(latency)
        self.status.append(answer.status)

    def window(self, status: int) -> tuple[float, float] | None:
        """When the first and the last request that got `status` started."""
        times = [t for t, s in zip(self.started, self.status, strict=True) if s == status]
        return (min(times), max(times)) if times else None

    def merge(self, other: Tally) -> None:
        """Fold in the answers of a follow-up (their latencies are not this phase's)."""
        self.statuses.update(other.statuses)
        self.codes.update(other.codes)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def count(self, low: int, high: int) -> int:
        return sum(n for s, n in self.statuses.items() if low <= s < high)

    @property
    def failed_3xx(self) -> int:
        """Answers below 400 that mean failure (a session gone, a page that is not the
        picker), kept out of the successes."""
        return sum(n for k, n in self.codes.items() if k[0] in "23")

    @property
    def ok(self) -> int:
        # A 200, or the ACS's 303 with a session; counted as 2xx in the table.
        return self.count(200, 400) - self.failed_3xx

    @property
    def client_errors(self) -> int:
        return self.count(400, 500)

    @property
    def unavailable(self) -> int:
        return self.statuses[503]

    @property
    def other_5xx(self) -> int:
        return self.count(500, 600) - self.statuses[503]

    @property
    def conn_errors(self) -> int:
        return self.statuses[CONN_ERROR]

    def p99(self, since: float = 0.0, until: float = math.inf) -> float:
        """p99 latency (seconds) of requests started within [since, until)."""
        if self.measured_p99 is not None:
            return self.measured_p99
        values = sorted(
            lat for t, lat in zip(self.started, self.latency, strict=True) if since <= t < until
        )
        if not values:
            return math.nan
        return values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]

    def max_latency(self) -> float:
        return max(self.latency, default=math.nan)


OPEN_LOOP_CONNECTIONS = 256


def client(connections: int = 0) -> aiohttp.ClientSession:
    """At most `connections` open (0: no limit, a closed loop's concurrency is its limit);
    no cookies kept between requests (each op sends the cookie it means to)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def answer_of(response: aiohttp.ClientResponse) -> Answer:
    """The status, and the problem document's code when the answer is a refusal."""
    if response.status < 400:
        await response.read()
        return Answer(response.status)
    code = ""
    if response.content_type == "application/problem+json":
        try:
            code = str((await response.json(content_type=None)).get("code", ""))
        except (ValueError, aiohttp.ClientError):
            code = "unreadable"
    else:
        await response.read()
    return Answer(response.status, code)


async def guarded(op: Op, session: aiohttp.ClientSession, i: int) -> Answer:
    try:
        return await op(session, i)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Answer(CONN_ERROR, type(exc).__name__)


async def closed_loop(
    op: Op,
    *,
    concurrency: int,
    seconds: float,
    limit: int = 10_000_000,
    actions: list[tuple[float, Action]] | None = None,
) -> Tally:
    """`concurrency` workers, each sending its next request when the last one is answered,
    until `seconds` have passed or `limit` requests were sent."""
    tally = Tally()
    counter = iter(range(limit))
    async with client() as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            for i in counter:
                began = time.perf_counter()
                if began >= deadline:
                    return
                answer = await guarded(op, session, i)
                tally.add(answer, began - start, time.perf_counter() - began)

        timers = _schedule(actions, start, tally)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        tally.elapsed = time.perf_counter() - start
        await _finish(timers)
    return tally


async def open_loop(
    op: Op,
    *,
    rate: float,
    seconds: float,
    actions: list[tuple[float, Action]] | None = None,
) -> Tally:
    """`rate` requests a second on a fixed schedule for `seconds`, whatever the answers."""
    tally = Tally()
    total = max(1, int(rate * seconds))
    pending: set[asyncio.Task[None]] = set()
    # Like a load balancer's pool: a request finding every connection busy waits for one,
    # and its latency (from its scheduled start) shows it.
    async with client(OPEN_LOOP_CONNECTIONS) as session:
        start = time.perf_counter() + 0.05

        async def one(i: int, due: float) -> None:
            answer = await guarded(op, session, i)
            tally.add(answer, due - start, time.perf_counter() - due)

        timers = _schedule(actions, start, tally)
        behind = 0.0  # how late the loop itself started a request: its figures include it
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            task = asyncio.create_task(one(i, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        if behind > 0.005:
            tally.notes.append(f"the load loop ran up to {behind * 1000:,.0f} ms behind schedule")
        tally.elapsed = time.perf_counter() - start
        await _finish(timers)
    return tally


def _schedule(
    actions: list[tuple[float, Action]] | None, start: float, tally: Tally
) -> list[asyncio.Task[None]]:
    """Fault actions at their offsets from the loop's start; each notes when it ran."""

    async def run(offset: float, action: Action) -> None:
        await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
        began = time.perf_counter() - start
        result = await action()
        note = f"at {began:.1f}s: {result}" if result else f"at {began:.1f}s"
        tally.notes.append(note)

    return [asyncio.create_task(run(offset, action)) for offset, action in actions or ()]


async def _finish(timers: list[asyncio.Task[None]]) -> None:
    """Actions scheduled past the loop's end still run (they are part of the scenario)."""
    await asyncio.gather(*timers)


def bearer_op(url: str, tokens: list[str]) -> Op:
    """POST /v1/credentials with the next token in rotation."""

    async def op(session: aiohttp.ClientSession, i: int) -> Answer:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        async with session.post(url, headers=headers, data=b"") as response:
            return await answer_of(response)

    return op


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SESSION_COOKIE = "broker_session"
PICKER_MARKER = b'id="subject"'  # only the role picker renders it


@dataclass
class SignIns:
    """Signed SAML Responses (url-encoded form bodies), each posted once by the load, and the
    sign-ins that were accepted: (index of the body, session cookie)."""

    bodies: list[bytes]
    accepted: list[tuple[int, str]] = field(default_factory=list)
    used: int = 0

    def take(self) -> int:
        if self.used >= len(self.bodies):
            raise RuntimeError("no signed SAML Response left")  # sized by the driver
        self.used += 1
        return self.used - 1


def acs_op(base: str, signins: SignIns) -> Op:
    """POST /saml/acs with the next unused Response; a 303 with a session cookie is a
    sign-in, remembered with the body that made it."""

    async def op(session: aiohttp.ClientSession, i: int) -> Answer:
        n = signins.take()
        async with session.post(
            base + "/saml/acs", data=signins.bodies[n], headers=FORM, allow_redirects=False
        ) as response:
            answer = await answer_of(response)
            cookie = response.cookies.get(SESSION_COOKIE)
        if answer.status == 303:
            if cookie is None:
                return Answer(303, "no session cookie")
            signins.accepted.append((n, cookie.value))
        return answer

    return op


async def picker(session: aiohttp.ClientSession, base: str, cookie: str) -> Answer:
    """GET / with a session cookie: 200 with the role picker, or the session is gone (a 303
    to sign in again), or the refusal."""
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    async with session.get(base + "/", headers=headers, allow_redirects=False) as response:
        if response.status == 200:
            body = await response.read()
            return Answer(200) if PICKER_MARKER in body else Answer(200, "not the picker")
        if response.status == 303:
            await response.read()
            return Answer(303, "session gone")
        return await answer_of(response)


def browser_op(base: str, signins: SignIns, cookies: list[str], acs_every: int) -> Op:
    """Browsers: every `acs_every`-th request a new sign-in, the others a session's picker."""
    sign_in = acs_op(base, signins)

    async def op(session: aiohttp.ClientSession, i: int) -> Answer:
        if i % acs_every == 0:
            return await sign_in(session, i)
        return await picker(session, base, cookies[i % len(cookies)])

    return op


def recorded(op: Op, outcome: dict[int, Answer]) -> Op:
    """The same op, each answer also kept by the request's index."""

    async def wrapped(session: aiohttp.ClientSession, i: int) -> Answer:
        answer = await guarded(op, session, i)
        outcome[i] = answer
        return answer

    return wrapped


def replay_op(base: str, bodies: list[bytes]) -> Op:
    """POST /saml/acs with a Response that was already accepted once."""

    async def op(session: aiohttp.ClientSession, i: int) -> Answer:
        async with session.post(
            base + "/saml/acs", data=bodies[i], headers=FORM, allow_redirects=False
        ) as response:
            return await answer_of(response)

    return op


def picker_op(base: str, cookies: list[str]) -> Op:
    async def op(session: aiohttp.ClientSession, i: int) -> Answer:
        return await picker(session, base, cookies[i])

    return op


async def sweep(op: Op, indices: list[int], concurrency: int = 8) -> Tally:
    """`op` once for each index, `concurrency` at a time."""
    tally = Tally()
    queue = iter(indices)
    async with client() as session:
        start = time.perf_counter()

        async def worker() -> None:
            for i in queue:
                began = time.perf_counter()
                answer = await guarded(op, session, i)
                tally.add(answer, began - start, time.perf_counter() - began)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        tally.elapsed = time.perf_counter() - start
    return tally
