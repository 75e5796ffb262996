"""STS protections through the running broker: the container-credentials cache, single
flight over HTTP, the per-account limit's 503, and what /metrics shows of them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.app import create_app
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.oidc_world import DEPLOYER, READER, Flow, flow_config
from tests.fakes.servers import serve_app

pytestmark = pytest.mark.peers

DEPLOY = {"team": "deploy", "email": "ci@example.com"}
BOTH = {"team": "deploy", "groups": ["readers"], "email": "ci@example.com"}


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[AwsStandIn, str]]:
    """This module's STS answers after 200 ms, so that concurrent requests overlap."""
    aws = AwsStandIn(latency_seconds=0.2)
    with serve(aws) as url:
        yield aws, url


def container(flow: Flow, token: str, role: str = "deployer") -> httpx.Response:
    return httpx.get(
        f"{flow.url}/v1/container-credentials",
        params={"role": role},
        headers={"Authorization": token},
    )


def keep(flow: Flow, body: dict[str, Any]) -> dict[str, Any]:
    flow.secrets += [body["SecretAccessKey"], body["Token"]]
    return body


def metric(flow: Flow, line_start: str) -> float:
    text = httpx.get(f"{flow.url}/metrics").text
    values = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    ]
    return sum(values)


def test_container_polls_with_one_token_make_one_sts_call(flow: Flow) -> None:
    token = flow.token(DEPLOY)
    hits_before = metric(flow, 'broker_container_cache_lookups_total{result="hit"}')
    first = keep(flow, container(flow, token).json())
    second = container(flow, token)
    assert second.status_code == 200
    assert second.headers["cache-control"] == "no-store"
    assert keep(flow, second.json())["AccessKeyId"] == first["AccessKeyId"]
    assert len(flow.standin.calls) == 1
    # Every poll is still a decision of its own in the audit trail.
    events = [e for e in flow.audit() if e.get("access_key_id") == first["AccessKeyId"]]
    assert [(e["event"], e["outcome"], e["role"]) for e in events] == [
        ("container-credentials", "granted", DEPLOYER)
    ] * 2
    assert metric(flow, 'broker_container_cache_lookups_total{result="hit"}') == hits_before + 1


def test_the_cache_is_per_token_and_role_and_the_rules_still_decide(flow: Flow) -> None:
    token = flow.token(BOTH)
    deployer = keep(flow, container(flow, token).json())
    reader = keep(flow, container(flow, token, role=READER).json())
    assert deployer["AccessKeyId"] != reader["AccessKeyId"]
    other = keep(flow, container(flow, flow.token(DEPLOY)).json())
    assert other["AccessKeyId"] != deployer["AccessKeyId"]
    assert len(flow.standin.calls) == 3
    # A token the rules give only deployer gets nothing more for its cached neighbour.
    refused = container(flow, flow.token(DEPLOY), role="reader")
    assert refused.status_code == 403
    assert refused.json()["code"] == "RoleNotGranted"
    assert len(flow.standin.calls) == 3


def test_the_json_endpoint_is_not_cached(flow: Flow) -> None:
    token = flow.token(DEPLOY)
    for _ in range(2):
        r = httpx.post(f"{flow.url}/v1/credentials", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        flow.secrets += [r.json()["Credentials"]["SecretAccessKey"]]
        flow.secrets += [r.json()["Credentials"]["SessionToken"]]
    assert len(flow.standin.calls) == 2


def test_identical_concurrent_requests_share_one_sts_call(flow: Flow) -> None:
    token = flow.token(DEPLOY)
    joins_before = metric(flow, "broker_sts_single_flight_joins_total")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=flow.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {token}"}
            return await asyncio.gather(
                *(client.post("/v1/credentials", headers=headers) for _ in range(10))
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 10
    keys = {r.json()["Credentials"]["AccessKeyId"] for r in responses}
    flow.secrets += [r.json()["Credentials"]["SessionToken"] for r in responses[:1]]
    flow.secrets += [r.json()["Credentials"]["SecretAccessKey"] for r in responses[:1]]
    assert len(keys) == 1
    assert len(flow.standin.calls) == 1
    assert metric(flow, "broker_sts_single_flight_joins_total") == joins_before + 9


def test_metrics_show_the_breaker(flow: Flow) -> None:
    text = httpx.get(f"{flow.url}/metrics").text
    assert f'broker_sts_breaker_state{{endpoint="{flow.standin_url}"}} 0.0' in text


def test_over_the_accounts_limit_is_503_with_retry_after(
    flow: Flow, tmp_path: Path, standin: tuple[AwsStandIn, str]
) -> None:
    aws, aws_url = standin
    config = flow_config(flow.provider.issuer, aws_url, tmp_path / "audit.jsonl")
    config = config.model_copy(
        update={
            "aws": config.aws.model_copy(
                update={"sts_rate_per_account": 0.01, "sts_burst_per_account": 1}
            )
        }
    )
    with serve_app(create_app(config)) as url:
        first = httpx.post(
            f"{url}/v1/credentials", headers={"Authorization": f"Bearer {flow.token(DEPLOY)}"}
        )
        assert first.status_code == 200
        flow.secrets += [first.json()["Credentials"]["SecretAccessKey"]]
        flow.secrets += [first.json()["Credentials"]["SessionToken"]]
        second = httpx.post(
            f"{url}/v1/credentials", headers={"Authorization": f"Bearer {flow.token(DEPLOY)}"}
        )
        assert second.status_code == 503
        assert second.json()["code"] == "StsRateLimited"
        assert int(second.headers["retry-after"]) >= 1
        assert len(aws.calls) == 1
        metrics = httpx.get(f"{url}/metrics").text
        assert 'broker_sts_rate_limited_total{account="111122223333",region="us-east-1"} 1.0' in (
            metrics
        )
