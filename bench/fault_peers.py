"""What the fault drill runs around the broker: HAProxy, Redis topologies, process sampling.

Everything binds to 127.0.0.1. The Redis topologies are the test suite's own
(tests/peers/redis_sentinel.py, tests/peers/redis_cluster.py), started the same way.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
PAGE = os.sysconf("SC_PAGE_SIZE")


def haproxy_config(port: int, servers: dict[str, int]) -> str:
    """Round robin over the replicas, health-checked on /readyz every 500 ms (down after two
    failures; a check may take 2 s, so a busy replica is not taken for a dead one), and a
    request whose connection fails, or that gets no answer at all, sent again to another
    replica (at most 3 times)."""
    lines = [
        "global",
        "    maxconn 8192",
        "    log stdout format raw local0 notice",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlog-normal",
        "    timeout connect 1s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 10s",
        "    timeout check 2s",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        "frontend drill",
        f"    bind 127.0.0.1:{port}",
        "    default_backend brokers",
        "backend brokers",
        "    balance roundrobin",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        "    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2",
        *(f"    server {name} 127.0.0.1:{p} check" for name, p in servers.items()),
    ]
    return "\n".join(lines) + "\n"


def haproxy_binary() -> str:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if binary is None:
        raise SystemExit("haproxy is not installed: run scripts/setup --test")
    return binary


@contextmanager
def peer_errors(what: str) -> Iterator[None]:
    """The test topologies report a failed start with pytest.fail; here it ends the drill."""
    try:
        yield
    except pytest.fail.Exception as exc:
        raise SystemExit(f"{what}: {exc}") from None


def start_sentinels(workdir: Path) -> object:
    from tests.peers.redis_sentinel import start_sentinel_set

    with peer_errors("Redis Sentinel"):
        return start_sentinel_set(workdir)


def start_cluster(workdir: Path) -> object:
    from tests.peers.redis_cluster import start_cluster as start

    with peer_errors("Redis Cluster"):
        return start(workdir, replicas=True)


def cluster_healed(cluster: Any, victim: int, seconds: float = 30) -> bool:
    """A live node says another master now serves the slots `victim` served, and
    cluster_state is ok again."""
    import redis

    def healed() -> bool:
        for port, proc in cluster.procs.items():
            if proc.poll() is not None:
                continue
            try:
                with redis.Redis(port=port, socket_timeout=1) as r:
                    if r.cluster("INFO")["cluster_state"] != "ok":
                        return False
                    slots = r.execute_command("CLUSTER", "SLOTS")
            except (redis.RedisError, OSError):
                return False
            owner = next(int(m[1]) for start, end, m, *_ in slots if start <= 0 <= end)
            return owner != victim
        return False

    return bool(poll(healed, seconds))


@dataclass(frozen=True)
class Footprint:
    rss_mb: float
    fds: int


def footprint(pid: int) -> Footprint:
    """Resident memory and open file descriptors of one process (from /proc)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return Footprint(pages * PAGE / 2**20, len(os.listdir(f"/proc/{pid}/fd")))


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A one-off GET on loopback (readiness, counters); (0, b"") if nothing answers."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def poll(check: Callable[[], T], seconds: float, interval: float = 0.1) -> T | None:
    """`check()` until it returns something truthy, for at most `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(interval)
