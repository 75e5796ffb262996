"""Shared fixtures and the suite's rules: no test can reach real AWS, async tests run on asyncio,
and every test sits in exactly one tier (unit, peers or browser)."""

from __future__ import annotations

import os
import socket
from collections.abc import Generator
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, settings

# Property-based tests: "ci" bounds the whole fuzz set (`-m fuzz`) to seconds in scripts/test;
# bench/fuzz.py runs it under "long" ($BROKER_FUZZ_EXAMPLES a test). No example database: a
# failure prints its reproduction blob instead of writing into the work tree.
_FUZZ = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
settings.register_profile("ci", max_examples=40, **_FUZZ)  # type: ignore[arg-type]
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("BROKER_FUZZ_EXAMPLES", "20000")),
    **_FUZZ,  # type: ignore[arg-type]
)
settings.load_profile(os.environ.get("BROKER_HYPOTHESIS_PROFILE", "ci"))

# Real peers, shared by every test module: panva's oidc-provider and redis-server (single,
# Sentinel, Cluster) on loopback.
pytest_plugins = [
    "tests.peers.oidc_provider",
    "tests.peers.redis_server",
    "tests.peers.redis_sentinel",
    "tests.peers.redis_cluster",
    "tests.peers.redis_tls",
]

TIERS = ("unit", "peers", "browser")
#: Session fixtures that run a real server: a test that uses one is not a unit test.
PEER_FIXTURES = frozenset({"oidc_provider", "redis_url", "moto_server"})


#: Modules that start servers on loopback but carry no marker of their own.
@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unmarked tests are unit tests; a test in two tiers, or a unit test on a peer, is an error."""
    wrong = []
    for item in items:
        tiers = [t for t in TIERS if item.get_closest_marker(t) is not None]
        if not tiers:
            item.add_marker(pytest.mark.unit)
            tiers = ["unit"]
        if len(tiers) > 1:
            wrong.append(f"{item.nodeid}: in more than one tier ({', '.join(tiers)})")
        peers = sorted(PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if tiers == ["unit"] and peers:
            wrong.append(f"{item.nodeid}: uses {', '.join(peers)}; mark it peers")
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
    if wrong:
        raise pytest.UsageError("mis-tiered tests:\n  " + "\n  ".join(wrong))


# A unit test starts no server. Servers on loopback start by listening on a socket, or (uvicorn
# on uvloop, which listens in C) through uvicorn's startup: both refuse during a unit test.
_listen = socket.socket.listen
_uvicorn_startup = uvicorn.Server.startup
_unit_test_running: list[str] = []


def _refuse_in_a_unit_test() -> None:
    if _unit_test_running:
        test = _unit_test_running[0]
        raise RuntimeError(f"{test} is a unit test but started a server: mark it peers")


def _listen_unless_unit(self: socket.socket, *args: Any) -> None:
    _refuse_in_a_unit_test()
    _listen(self, *args)


async def _uvicorn_startup_unless_unit(self: uvicorn.Server, sockets: Any = None) -> None:
    _refuse_in_a_unit_test()
    await _uvicorn_startup(self, sockets)


_patches = pytest.MonkeyPatch()


def pytest_sessionstart(session: pytest.Session) -> None:
    _patches.setattr(socket.socket, "listen", _listen_unless_unit)
    _patches.setattr(uvicorn.Server, "startup", _uvicorn_startup_unless_unit)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _patches.undo()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Mark the running test as a unit test (or not) for its setup, call and teardown."""
    if item.get_closest_marker("unit") is None:
        return (yield)
    _unit_test_running.append(item.nodeid)
    try:
        return (yield)
    finally:
        _unit_test_running.clear()


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
