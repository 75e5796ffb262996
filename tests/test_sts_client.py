"""The STS client's failure handling against the stand-in: timeouts, refusals, retry budget."""

from __future__ import annotations

import time

import pytest

from broker.aws.sts import RetryBudget, StsClient
from broker.config import AwsSettings
from broker.errors import BrokerError, StsRefused, StsThrottled, StsUnavailable
from broker.identity import RoleGrant, StsCall, WebIdentityToken
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.servers import free_port

pytestmark = pytest.mark.peers

ROLE = "arn:aws:iam::111122223333:role/deployer"


async def _no_sleep(_: float) -> None:
    return None


@pytest.mark.anyio
async def test_unreachable_sts_is_unavailable_after_retries() -> None:
    settings = AwsSettings(sts_endpoint=f"http://127.0.0.1:{free_port()}", sts_max_attempts=3)
    client = StsClient(settings, sleep=_no_sleep)
    await client.start()
    try:
        with pytest.raises(StsUnavailable) as info:
            await client.assume(web_identity(ROLE), duration=900)
        assert info.value.headers["Retry-After"]
        assert client.calls == 3
    finally:
        await client.close()


@pytest.mark.anyio
async def test_slow_sts_times_out_cleanly() -> None:
    aws = AwsStandIn(latency_seconds=2.0)
    with serve(aws) as url:
        settings = AwsSettings(sts_endpoint=url, sts_timeout_seconds=0.2, sts_max_attempts=2)
        client = StsClient(settings, sleep=_no_sleep)
        await client.start()
        try:
            with pytest.raises(StsUnavailable):
                await client.assume(web_identity(ROLE), duration=900)
        finally:
            await client.close()


@pytest.mark.anyio
async def test_validation_errors_are_not_retried() -> None:
    aws = AwsStandIn()
    with serve(aws) as url:
        client = StsClient(AwsSettings(sts_endpoint=url), sleep=_no_sleep)
        await client.start()
        try:
            with pytest.raises(StsRefused) as info:
                await client.assume(
                    web_identity("arn:aws:iam::111122223333:user/not-a-role"), duration=900
                )
            assert client.calls == 1
            assert info.value.extra["sts_code"]
        finally:
            await client.close()


@pytest.mark.parametrize(
    "value",
    [
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "PHNhbWxwOlJlc3BvbnNlIC8+/+==",
        "arn:aws:iam::111122223333:role/a+b=c,d.e@f-g",
        '{"Statement": [{"Effect": "Allow"}]}',
        "ünïcödé & = ? # %",
        "",
    ],
)
def test_form_body_round_trips(value: str) -> None:
    from urllib.parse import parse_qsl

    from broker.aws.sts import form_body

    form = {"Action": "AssumeRoleWithSAML", "Value": value}
    assert dict(parse_qsl(form_body(form).decode("ascii"), keep_blank_values=True)) == form


def web_identity(role_arn: str) -> StsCall:
    grant = RoleGrant("ci", role_arn, "111122223333", None, 3600, "r")
    return WebIdentityToken("x.y.z", "ci").sts_call(grant)


@pytest.mark.anyio
async def test_throttling_is_retried_up_to_the_attempts() -> None:
    """At 30 % throttling, 5 attempts leave ~0.2 % refused: every throttle below the limit of
    attempts is retried, cheaply in the budget."""
    aws = AwsStandIn()
    with serve(aws) as url:
        client = StsClient(AwsSettings(sts_endpoint=url), sleep=_no_sleep)
        await client.start()
        try:
            aws.fail_next("Throttling", count=4)
            with pytest.raises(BrokerError) as info:
                await client.assume(web_identity(ROLE), duration=900)
            # The fifth attempt reached STS proper (which refuses this made-up token).
            assert not isinstance(info.value, StsThrottled)
            assert client.calls == 5
        finally:
            await client.close()


@pytest.mark.anyio
async def test_the_deadline_bounds_the_whole_request() -> None:
    aws = AwsStandIn(latency_seconds=2.0)
    with serve(aws) as url:
        settings = AwsSettings(
            sts_endpoint=url, sts_timeout_seconds=1.5, sts_deadline_seconds=0.5, sts_max_attempts=5
        )
        client = StsClient(settings, sleep=_no_sleep)
        await client.start()
        try:
            started = time.monotonic()
            with pytest.raises(StsUnavailable):
                await client.assume(web_identity(ROLE), duration=900)
            assert time.monotonic() - started < 1.0
            assert client.calls == 1  # no retry that could not finish by the deadline
        finally:
            await client.close()


def test_a_retry_after_throttling_costs_less() -> None:
    budget = RetryBudget(capacity=5, retry_cost=5, throttle_cost=1)
    assert all(budget.spend(throttled=True) for _ in range(5))
    assert not budget.spend(throttled=True)
    budget = RetryBudget(capacity=5, retry_cost=5, throttle_cost=1)
    assert budget.spend()
    assert not budget.spend(throttled=True)
