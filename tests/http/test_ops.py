"""/metrics: open unless server.metrics_token_file is set; then only its bearer token reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.app import in_process, minimal_config

pytestmark = pytest.mark.anyio

TOKEN = "s3cr3t-metrics-token-0123456789"


async def test_metrics_are_open_without_a_token_configured() -> None:
    async with in_process(minimal_config()) as broker:
        r = await broker.client.get("/metrics")
    assert r.status_code == 200
    assert "broker_http_requests_total" in r.text


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "MissingToken"),
        ("", "MissingToken"),
        ("Bearer", "MissingToken"),
        (f"Basic {TOKEN}", "MissingToken"),
        ("Bearer wrong", "InvalidToken"),
        (f"Bearer {TOKEN}x", "InvalidToken"),
        (f"Bearer {TOKEN[:-1]}", "InvalidToken"),
        (f"Bearer {TOKEN.upper()}", "InvalidToken"),
    ],
)
async def test_metrics_refuse_without_the_token(
    tmp_path: Path, authorization: str | None, code: str
) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    headers = {} if authorization is None else {"Authorization": authorization}
    async with in_process(minimal_config(metrics_token_file=str(token_file))) as broker:
        r = await broker.client.get("/metrics", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == code
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "broker_" not in r.text
    assert TOKEN not in r.text


async def test_metrics_with_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    async with in_process(minimal_config(metrics_token_file=str(token_file))) as broker:
        r = await broker.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        assert "broker_http_requests_total" in r.text
        # Read on every scrape: a rotated token takes effect without a restart.
        token_file.write_text("rotated-token-abcdefghijklmnop")
        old = await broker.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        new = await broker.client.get(
            "/metrics", headers={"Authorization": "Bearer rotated-token-abcdefghijklmnop"}
        )
    assert old.status_code == 401
    assert new.status_code == 200


@pytest.mark.parametrize("content", [None, "", "   \n"])
async def test_an_unusable_token_file_fails_closed(tmp_path: Path, content: str | None) -> None:
    """Missing or empty: the endpoint refuses everyone (an empty token must match nothing)."""
    token_file = tmp_path / "metrics-token"
    if content is not None:
        token_file.write_text(content)
    async with in_process(minimal_config(metrics_token_file=str(token_file))) as broker:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            r = await broker.client.get("/metrics", headers=headers)
            assert r.status_code >= 401, r.text
            assert "broker_" not in r.text
        r = await broker.client.get("/metrics", headers={"Authorization": "Bearer x"})
    assert r.status_code == 500
    assert r.json()["code"] == "InternalError"


async def test_other_probes_stay_open(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN)
    async with in_process(minimal_config(metrics_token_file=str(token_file))) as broker:
        assert (await broker.client.get("/healthz")).status_code == 200
        assert (await broker.client.get("/readyz")).status_code == 200
