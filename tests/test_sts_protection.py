"""The STS client's protections against the STS stand-in: single flight, the per-account
limit and the circuit breaker, each read off the stand-in's own call log."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest

from broker.aws.sts import StsClient
from broker.config import AwsSettings
from broker.errors import (
    StsAccessDenied,
    StsRateLimited,
    StsRefused,
    StsThrottled,
    StsUnavailable,
)
from broker.identity import Credentials, RoleGrant, StsCall, WebIdentityToken
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.clock import Clock

pytestmark = pytest.mark.peers

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"
# Registered with a trust policy for another provider: STS answers AccessDenied.
DENIED = f"arn:aws:iam::{ACCOUNT}:role/denied"
OTHER_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/other.example.com"
OTHER_ROLE = "arn:aws:iam::444455556666:role/deployer"


class Seen:
    """What the client reported about its protections (the StsObserver protocol)."""

    def __init__(self) -> None:
        self.joins = 0
        self.limited: list[tuple[str, str]] = []
        self.breaker: list[str] = []
        self.refused = 0

    def sts_joined(self) -> None:
        self.joins += 1

    def sts_rate_limited(self, account: str, region: str) -> None:
        self.limited.append((account, region))

    def sts_breaker(self, endpoint: str, state: str, *, changed: bool = True) -> None:
        if changed:
            self.breaker.append(state)

    def sts_breaker_refused(self, endpoint: str) -> None:
        self.refused += 1

    def container_cache(self, result: str) -> None:
        return None


def standin_for_sts_tests(**kw: Any) -> AwsStandIn:
    """The stand-in in its benchmark mode (any well-formed token, unregistered roles let
    through: these tests are about the client, not trust), with one role whose trust policy
    names another provider, for AccessDenied."""
    aws = AwsStandIn(
        verify_signatures=False, accept_any_issuer=True, allow_unregistered_roles=True, **kw
    )
    aws.register_role(
        DENIED,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": OTHER_PROVIDER},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                }
            ],
        },
    )
    return aws


def token(subject: str = "ci") -> str:
    """A well-formed OIDC token; the stand-in runs in its accept-any-issuer mode, so what
    is under test is the calls, not the signature."""
    claims = {
        "iss": "https://issuer.example",
        "sub": subject,
        "aud": "sts.amazonaws.com",
        "exp": int(time.time()) + 600,
    }
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def call(role: str = ROLE, subject: str = "ci", jwt_: str | None = None) -> StsCall:
    grant = RoleGrant("deployer", role, role.split(":")[4], None, 3600, "r")
    return WebIdentityToken(jwt_ or token(subject), subject).sts_call(grant)


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[AwsStandIn, str]]:
    aws = standin_for_sts_tests(latency_seconds=0.05)
    with serve(aws) as url:
        yield aws, url


@pytest.fixture
def aws(standin: tuple[AwsStandIn, str]) -> AwsStandIn:
    standin[0].reset()
    return standin[0]


@pytest.fixture
def url(standin: tuple[AwsStandIn, str]) -> str:
    return standin[1]


async def _no_sleep(_: float) -> None:
    return None


@asynccontextmanager
async def client(
    endpoint: str, *, clock: Clock | None = None, seen: Seen | None = None, **settings: Any
) -> AsyncIterator[StsClient]:
    sts = StsClient(
        AwsSettings(sts_endpoint=endpoint, **settings),
        sleep=_no_sleep,
        clock=clock or Clock(),
        observer=seen,
    )
    await sts.start()
    try:
        yield sts
    finally:
        await sts.close()


async def burst(sts: StsClient, calls: list[StsCall]) -> list[Credentials | BaseException]:
    return await asyncio.gather(
        *(sts.assume(c, duration=900) for c in calls), return_exceptions=True
    )


# --- single flight ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_identical_concurrent_requests_make_one_sts_call(aws: AwsStandIn, url: str) -> None:
    seen = Seen()
    same = call()
    async with client(url, seen=seen) as sts:
        results = await burst(sts, [same] * 20)
    assert len(aws.calls) == 1
    assert all(isinstance(r, Credentials) for r in results)
    assert {r.access_key_id for r in results if isinstance(r, Credentials)} == {
        aws.issued_access_key_ids[-1]
    }
    assert seen.joins == 19


@pytest.mark.anyio
async def test_distinct_requests_each_make_their_own_call(aws: AwsStandIn, url: str) -> None:
    jwt_ = token()
    requests = [
        call(subject="ci-a"),  # another proof
        call(subject="ci-b"),
        call(role=OTHER_ROLE, jwt_=jwt_),  # the same proof for another role
        call(jwt_=jwt_),
    ]
    async with client(url) as sts:
        results = await burst(sts, requests)
        # The same proof and role for another duration is another request too.
        results.append(await sts.assume(requests[-1], duration=1800))
    assert [c.outcome for c in aws.calls] == ["ok"] * 5, results
    keys = {r.access_key_id for r in results if isinstance(r, Credentials)}
    assert len(keys) == 5


@pytest.mark.anyio
async def test_without_single_flight_each_request_calls_sts(aws: AwsStandIn, url: str) -> None:
    same = call()
    async with client(url, sts_single_flight=False) as sts:
        await burst(sts, [same] * 5)
    assert len(aws.calls) == 5


@pytest.mark.anyio
async def test_waiters_on_one_call_all_get_its_refusal(aws: AwsStandIn, url: str) -> None:
    same = call(role=DENIED)
    async with client(url) as sts:
        results = await burst(sts, [same] * 5)
    assert len(aws.calls) == 1
    assert all(isinstance(r, StsAccessDenied) for r in results)
    assert len({id(r) for r in results}) == 5


@pytest.mark.anyio
async def test_single_flight_entry_is_gone_once_the_call_completes(
    aws: AwsStandIn, url: str
) -> None:
    same = call()
    async with client(url) as sts:
        await sts.assume(same, duration=900)
        await sts.assume(same, duration=900)
    assert len(aws.calls) == 2  # sequential: shared only while in flight, never cached


# --- the per-(account, region) limit ------------------------------------------------------


@pytest.mark.anyio
async def test_limit_refuses_beyond_the_burst_without_calling_sts(
    aws: AwsStandIn, url: str
) -> None:
    clock, seen = Clock(), Seen()
    settings: dict[str, Any] = {"sts_rate_per_account": 0.5, "sts_burst_per_account": 3}
    async with client(url, clock=clock, seen=seen, **settings) as sts:
        results = await burst(sts, [call(subject=f"s{i}") for i in range(5)])
        assert len(aws.calls) == 3
        refused = [r for r in results if isinstance(r, StsRateLimited)]
        assert len(refused) == 2
        assert all(r.status == 503 for r in refused)
        assert {r.headers["Retry-After"] for r in refused} == {"2"}  # one token: 1 / 0.5 s
        assert seen.limited == [(ACCOUNT, "us-east-1")] * 2
        # Another account has a quota of its own.
        await sts.assume(call(role=OTHER_ROLE), duration=900)
        clock.advance(2)
        await sts.assume(call(subject="later"), duration=900)
    assert len(aws.calls) == 5


@pytest.mark.anyio
async def test_joiners_do_not_spend_the_limit(aws: AwsStandIn, url: str) -> None:
    same = call()
    settings: dict[str, Any] = {"sts_rate_per_account": 0.01, "sts_burst_per_account": 1}
    async with client(url, **settings) as sts:
        results = await burst(sts, [same] * 10)
    assert all(isinstance(r, Credentials) for r in results)
    assert len(aws.calls) == 1


@pytest.mark.anyio
async def test_a_retry_the_limit_cannot_pay_for_is_not_made(aws: AwsStandIn, url: str) -> None:
    aws.fail_next("Throttling", count=5)
    settings: dict[str, Any] = {
        "sts_rate_per_account": 0.01,
        "sts_burst_per_account": 1,
        "sts_max_attempts": 3,
    }
    async with client(url, **settings) as sts:
        with pytest.raises(StsThrottled):
            await sts.assume(call(), duration=900)
    assert len(aws.calls) == 1


# --- the circuit breaker ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BREAKER: dict[str, Any] = {
    "sts_max_attempts": 1,
    "sts_breaker_failures": 3,
    "sts_breaker_window_seconds": 30,
    "sts_breaker_cooldown_seconds": 15,
}


@pytest.mark.anyio
async def test_breaker_opens_on_a_closed_port_fails_fast_then_probes_and_closes() -> None:
    port = closed_port()
    clock, seen = Clock(), Seen()
    endpoint = f"http://127.0.0.1:{port}"
    async with client(endpoint, clock=clock, seen=seen, **BREAKER) as sts:
        for _ in range(3):
            with pytest.raises(StsUnavailable):
                await sts.assume(call(), duration=900)
        assert sts.calls == 3
        assert seen.breaker == ["open"]
        # Open: fail fast, no network call, Retry-After the rest of the cool-down.
        clock.advance(5)
        for _ in range(10):
            with pytest.raises(StsUnavailable) as info:
                await sts.assume(call(), duration=900)
            assert info.value.headers["Retry-After"] == "10"
        assert sts.calls == 3
        assert seen.refused == 10
        # STS comes back on the same address; after the cool-down one probe goes out.
        aws = standin_for_sts_tests()
        with serve(aws, port=port):
            clock.advance(10)
            creds = await sts.assume(call(), duration=900)
            assert creds.access_key_id.startswith("ASIA")
            assert sts.breaker.state == "closed"
            await sts.assume(call(), duration=900)
        assert len(aws.calls) == 2
    assert seen.breaker == ["open", "half_open", "closed"]


@pytest.mark.anyio
async def test_breaker_opens_on_5xx_and_a_failed_probe_reopens_it(
    aws: AwsStandIn, url: str
) -> None:
    clock, seen = Clock(), Seen()
    aws.fail_next("ServiceUnavailable", count=4, status=503)
    async with client(url, clock=clock, seen=seen, **BREAKER) as sts:
        for _ in range(3):
            with pytest.raises(StsUnavailable):
                await sts.assume(call(), duration=900)
        with pytest.raises(StsUnavailable):
            await sts.assume(call(), duration=900)
        assert len(aws.calls) == 3
        clock.advance(15)
        with pytest.raises(StsUnavailable):  # the probe meets the fourth 503
            await sts.assume(call(), duration=900)
        assert len(aws.calls) == 4
        with pytest.raises(StsUnavailable) as info:
            await sts.assume(call(), duration=900)
        assert info.value.headers["Retry-After"] == "15"
        assert len(aws.calls) == 4
        clock.advance(15)
        await sts.assume(call(), duration=900)
    assert seen.breaker == ["open", "half_open", "open", "half_open", "closed"]


@pytest.mark.anyio
async def test_the_callers_mistakes_never_open_the_breaker(aws: AwsStandIn, url: str) -> None:
    async with client(url, **BREAKER) as sts:
        for i in range(5):
            with pytest.raises(StsAccessDenied):
                await sts.assume(call(role=DENIED, subject=f"d{i}"), duration=900)
        for i in range(5):
            with pytest.raises(StsRefused):
                await sts.assume(
                    call(role=f"arn:aws:iam::{ACCOUNT}:user/not-a-role", subject=f"v{i}"),
                    duration=900,
                )
        aws.fail_next("Throttling", count=5)
        for i in range(5):
            with pytest.raises(StsThrottled):
                await sts.assume(call(subject=f"t{i}"), duration=900)
        assert sts.breaker.state == "closed"
    assert len(aws.calls) == 15
