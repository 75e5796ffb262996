"""Shared fixtures: no test can reach real AWS, and async tests run on asyncio."""

from __future__ import annotations

import os

import pytest

# Real peers, shared by every test module: panva's oidc-provider and redis-server (single,
# Sentinel, Cluster) on loopback.
pytest_plugins = [
    "tests.peers.oidc_provider",
    "tests.peers.redis_server",
    "tests.peers.redis_sentinel",
    "tests.peers.redis_cluster",
    "tests.peers.redis_tls",
]


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove AWS_* so nothing can pick up real credentials or endpoints."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
