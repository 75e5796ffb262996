"""The STS protections on their own, with a clock moved by hand: limiter, breaker, single
flight and the container-credentials cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from broker.aws.breaker import CircuitBreaker
from broker.aws.cache import CredentialsCache
from broker.aws.flight import FlightFull, SingleFlight
from broker.aws.limits import AccountLimiter, TokenBucket, retry_after
from broker.errors import StsAccessDenied
from broker.identity import Credentials
from tests.fakes.clock import Clock

# --- token bucket, per (account, region) --------------------------------------------------


def test_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)  # one token is 1/rate away
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0.0
    assert bucket.take(10.0) == 0.0  # refilled, but never past the burst
    assert [bucket.take(10.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(10.0) > 0


def test_limiter_keeps_one_bucket_per_account_and_region() -> None:
    clock = Clock()
    limiter = AccountLimiter(rate=1, burst=2, clock=clock)
    assert [limiter.take("111122223333", "us-east-1") for _ in range(2)] == [0.0, 0.0]
    wait = limiter.take("111122223333", "us-east-1")
    assert wait == pytest.approx(1.0)
    assert retry_after(wait) == "1"
    # Another account, or the same account in another region, has a quota of its own.
    assert limiter.take("444455556666", "us-east-1") == 0.0
    assert limiter.take("111122223333", "eu-west-1") == 0.0
    clock.advance(1.0)
    assert limiter.take("111122223333", "us-east-1") == 0.0


def test_limiter_forgets_the_least_recently_used_bucket_first() -> None:
    limiter = AccountLimiter(rate=1, burst=1, clock=Clock(), max_keys=2)
    limiter.take("a", "r")
    limiter.take("b", "r")
    limiter.take("a", "r")  # a is now the most recently used
    limiter.take("c", "r")  # b goes
    assert limiter.take("a", "r") > 0  # still remembered: empty
    assert limiter.take("b", "r") == 0.0  # forgotten: starts full again


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (14.5, "15")])
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


# --- circuit breaker ----------------------------------------------------------------------


def breaker(clock: Clock, states: list[str] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        failures=3,
        window=10,
        cooldown=15,
        clock=clock,
        on_change=None if states is None else states.append,
    )


def state(b: CircuitBreaker) -> str:
    """Read afresh each time (mypy would otherwise pin the attribute after one assert)."""
    return b.state


def test_breaker_opens_after_consecutive_failures_then_probes_once() -> None:
    clock, states = Clock(), list[str]()
    b = breaker(clock, states)
    for _ in range(3):
        b.failed(b.admit())
    assert state(b) == "open"
    assert b.admit().wait == pytest.approx(15)
    clock.advance(10)
    assert b.admit().wait == pytest.approx(5)
    clock.advance(5)
    probe = b.admit()
    assert (probe.wait, probe.probe) == (0.0, True)
    assert state(b) == "half_open"
    other = b.admit()
    assert other.wait > 0  # one probe at a time
    assert not other.probe
    b.succeeded(probe)
    assert state(b) == "closed"
    assert b.admit().wait == 0.0
    assert states == ["open", "half_open", "closed"]


def test_a_failed_probe_opens_the_breaker_for_another_cool_down() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(b.admit())
    clock.advance(15)
    probe = b.admit()
    b.failed(probe)
    assert state(b) == "open"
    assert b.admit().wait == pytest.approx(15)


def test_an_abandoned_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(b.admit())
    clock.advance(15)
    b.abandoned(b.admit())
    assert state(b) == "half_open"
    assert b.admit().probe


def test_a_success_breaks_the_streak() -> None:
    b = breaker(Clock())
    for _ in range(5):
        b.failed(b.admit())
        b.failed(b.admit())
        b.succeeded(b.admit())
    assert state(b) == "closed"


def test_failures_spread_beyond_the_window_do_not_open_it() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(6):
        b.failed(b.admit())
        clock.advance(6)  # the third failure of any streak lands after the 10 s window
    assert state(b) == "closed"


def test_late_answers_to_calls_sent_before_it_opened_are_ignored() -> None:
    clock = Clock()
    b = breaker(clock)
    early = b.admit()  # sent while closed, answered after the breaker opened
    for _ in range(3):
        b.failed(b.admit())
    b.succeeded(early)
    assert state(b) == "open"
    clock.advance(15)
    probe = b.admit()
    b.succeeded(early)
    b.failed(early)
    assert state(b) == "half_open"
    b.succeeded(probe)
    assert state(b) == "closed"


# --- single flight ------------------------------------------------------------------------


class Upstream:
    """A call that counts how often it runs and finishes when the test says so."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> str:
        self.runs += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"answer {self.runs}"


@pytest.mark.anyio
async def test_identical_concurrent_calls_share_one_run() -> None:
    flight: SingleFlight[str] = SingleFlight()
    upstream, joins = Upstream(), []
    tasks = [
        asyncio.ensure_future(flight.run(b"k", upstream, lambda: joins.append(1)))
        for _ in range(50)
    ]
    await asyncio.sleep(0)
    assert len(flight) == 1
    upstream.release.set()
    assert set(await asyncio.gather(*tasks)) == {"answer 1"}
    assert upstream.runs == 1
    assert len(joins) == 49
    assert len(flight) == 0  # the entry goes with the call: nothing is cached
    assert await flight.run(b"k", upstream, lambda: None) == "answer 2"


@pytest.mark.anyio
async def test_distinct_keys_run_separately() -> None:
    flight: SingleFlight[str] = SingleFlight()
    upstream = Upstream()
    upstream.release.set()
    keys = [bytes([i]) for i in range(5)]
    await asyncio.gather(*(flight.run(k, upstream, lambda: None) for k in keys))
    assert upstream.runs == 5


@pytest.mark.anyio
async def test_every_caller_gets_the_same_error_with_an_error_id_of_its_own() -> None:
    flight: SingleFlight[str] = SingleFlight()
    upstream = Upstream()
    upstream.error = StsAccessDenied("AWS refused.", extra={"sts_code": "AccessDenied"})
    tasks = [asyncio.ensure_future(flight.run(b"k", upstream, lambda: None)) for _ in range(3)]
    await asyncio.sleep(0)
    upstream.release.set()
    errors = await asyncio.gather(*tasks, return_exceptions=True)
    assert upstream.runs == 1
    assert all(isinstance(e, StsAccessDenied) for e in errors)
    assert {e.extra["sts_code"] for e in errors if isinstance(e, StsAccessDenied)} == {
        "AccessDenied"
    }
    assert len({id(e) for e in errors}) == 3  # distinct objects: one error_id per refusal


@pytest.mark.anyio
async def test_a_caller_hanging_up_does_not_cancel_the_call_for_the_others() -> None:
    flight: SingleFlight[str] = SingleFlight()
    upstream = Upstream()
    first = asyncio.ensure_future(flight.run(b"k", upstream, lambda: None))
    second = asyncio.ensure_future(flight.run(b"k", upstream, lambda: None))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    upstream.release.set()
    assert await second == "answer 1"
    assert first.cancelled()
    assert len(flight) == 0


@pytest.mark.anyio
async def test_waiters_are_bounded() -> None:
    flight: SingleFlight[str] = SingleFlight(max_waiters=2)
    upstream = Upstream()
    tasks = [asyncio.ensure_future(flight.run(b"k", upstream, lambda: None)) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(FlightFull):
        await flight.run(b"k", upstream, lambda: None)
    upstream.release.set()
    assert await asyncio.gather(*tasks) == ["answer 1"] * 3


@pytest.mark.anyio
async def test_past_max_keys_a_caller_runs_unshared() -> None:
    flight: SingleFlight[str] = SingleFlight(max_keys=1)
    upstream = Upstream()
    tasks = [asyncio.ensure_future(flight.run(k, upstream, lambda: None)) for k in (b"a", b"b")]
    await asyncio.sleep(0)
    assert len(flight) == 1
    upstream.release.set()
    await asyncio.gather(*tasks)
    assert upstream.runs == 2


# --- container-credentials cache ----------------------------------------------------------

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def creds(expires_in: timedelta, key_id: str = "ASIAEXAMPLE") -> Credentials:
    return Credentials(key_id, "secret", "token", NOW + expires_in, "arn:aws:sts::1:x")


def cache(clock: Clock, **limits: float) -> CredentialsCache:
    return CredentialsCache(
        size=int(limits.get("size", 100)),
        max_age=limits.get("max_age", 300),
        min_remaining=limits.get("min_remaining", 900),
        clock=clock,
    )


def test_cache_hit_then_max_age() -> None:
    clock = Clock(NOW.timestamp())
    c = cache(clock)
    assert c.get(b"k") == (None, "miss")
    issued = creds(timedelta(hours=1))
    c.put(b"k", issued, proof_expires=NOW + timedelta(hours=1))
    assert c.get(b"k") == (issued, "hit")
    assert c.get(b"other") == (None, "miss")
    clock.advance(299)
    assert c.get(b"k") == (issued, "hit")
    clock.advance(1)
    assert c.get(b"k") == (None, "stale")
    assert c.get(b"k") == (None, "miss")  # dropped


def test_cache_never_serves_past_the_proofs_expiry() -> None:
    clock = Clock(NOW.timestamp())
    c = cache(clock)
    c.put(b"k", creds(timedelta(hours=1)), proof_expires=NOW + timedelta(seconds=60))
    clock.advance(59)
    assert c.get(b"k")[1] == "hit"
    clock.advance(1)
    assert c.get(b"k") == (None, "stale")


def test_cache_never_serves_credentials_near_their_own_expiry() -> None:
    clock = Clock(NOW.timestamp())
    c = cache(clock, max_age=3600, min_remaining=300)
    c.put(b"k", creds(timedelta(minutes=10)), proof_expires=NOW + timedelta(hours=1))
    clock.advance(299)
    assert c.get(b"k")[1] == "hit"
    clock.advance(1)  # five minutes left
    assert c.get(b"k") == (None, "stale")


def test_cache_does_not_keep_what_it_could_never_serve() -> None:
    clock = Clock(NOW.timestamp())
    c = cache(clock)
    c.put(b"k", creds(timedelta(minutes=14)), proof_expires=NOW + timedelta(hours=1))
    assert len(c) == 0
    c.put(b"k", creds(timedelta(hours=1)), proof_expires=NOW)
    assert len(c) == 0


def test_cache_is_bounded_least_recently_used_first() -> None:
    clock = Clock(NOW.timestamp())
    c = cache(clock, size=2)
    proof = NOW + timedelta(hours=1)
    for key in (b"a", b"b"):
        c.put(key, creds(timedelta(hours=1), key.decode()), proof)
    c.get(b"a")
    c.put(b"c", creds(timedelta(hours=1), "c"), proof)
    assert len(c) == 2
    assert c.get(b"b") == (None, "miss")
    assert c.get(b"a")[1] == c.get(b"c")[1] == "hit"
