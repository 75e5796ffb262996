"""A real redis-server on loopback for the tests (Debian's package, installed by scripts/setup)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.servers import NotReady, wait_until


def free_port(*, bus: bool = False) -> int:
    """A free loopback port; with `bus`, port + 10000 (Redis Cluster's bus) is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/setup --test")
    return binary


def start_redis(workdir: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    """redis-server on 127.0.0.1:`port`, no persistence, logging to `workdir`/redis.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
            # Replicas sync at once (the default waits 5 s to batch them).
            "--repl-diskless-sync-delay",
            "0",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(
    check: Callable[[], bool], what: str, *, procs: list[subprocess.Popen[bytes]], seconds: float
) -> None:
    """The shared wait (tests/fakes/servers.py) over every process of a topology; a check
    that raises OSError counts as not yet."""

    def ready() -> bool:
        try:
            return check()
        except OSError:
            return False

    try:
        wait_until(ready, timeout=seconds, what=what, alive=procs, interval=0.05)
    except NotReady as exc:
        pytest.fail(str(exc), pytrace=False)


def answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_redis(tmp_path_factory.mktemp("redis"), port)
    try:
        wait_for(lambda: answers_ping(port), "redis-server", procs=[proc], seconds=10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop([proc])
