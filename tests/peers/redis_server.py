"""A real redis-server on loopback for the tests (Debian's package, installed by scripts/setup)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.servers import NotReady, free_port, read_text, running, wait_until


def _pongs(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/setup --test")
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    log = workdir / "redis.log"
    with running([*args, "--dir", str(workdir)], output=log, stop_timeout=10) as proc:
        try:
            wait_until(
                lambda: _pongs(port),
                timeout=10,
                what="redis-server",
                alive=proc,
                output=read_text(log),
                interval=0.05,
            )
        except NotReady as exc:
            pytest.fail(str(exc), pytrace=False)
        yield f"redis://127.0.0.1:{port}/0"
