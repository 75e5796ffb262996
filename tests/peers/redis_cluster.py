"""Redis Cluster on loopback: three masters (and a replica each, when asked), built by hand
with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE as redis-cli --cluster create would."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.peers.redis_server import answers_ping, free_port, start_redis, stop, wait_for

SLOTS = ((0, 5460), (5461, 10922), (10923, 16383))
# Small, so a replica takes over within a few seconds of its master's death.
NODE_TIMEOUT_MS = 1000


@dataclass
class RedisClusterSet:
    masters: list[int]
    replicas: list[int]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.masters]

    def owner(self, key: str) -> int:
        """The port of the master now serving `key`'s slot (asked of a live node)."""
        for port, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            with redis.Redis(port=port, socket_timeout=1) as r:
                slot = int(r.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in r.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        return int(master[1])
        raise AssertionError("no live node")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def stop(self) -> None:
        stop(list(self.procs.values()))


def _info(port: int, section: str) -> dict[str, Any]:
    with redis.Redis(port=port, socket_timeout=1) as r:
        return dict(r.info(section))


#: Starts on fresh ports after a node dies while the cluster forms.
START_ATTEMPTS = 3


def start_cluster(workdir: Path, *, replicas: bool) -> RedisClusterSet:
    """A node's ports are chosen free, then bound by redis-server a moment later: another
    process can take one (the bus port, port + 10000, lies in the ephemeral range) in between,
    and the node exits. That costs a start on fresh ports, not the test."""
    for attempt in range(START_ATTEMPTS):
        try:
            return _start_once(workdir / f"start-{attempt}", replicas=replicas)
        except pytest.fail.Exception as exc:
            if "exited" not in str(exc) or attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _start_once(workdir: Path, *, replicas: bool) -> RedisClusterSet:
    masters = [free_port(bus=True) for _ in SLOTS]
    c = RedisClusterSet(masters, [free_port(bus=True) for _ in SLOTS] if replicas else [])
    try:
        for port in [*c.masters, *c.replicas]:
            c.procs[port] = start_redis(
                workdir / f"node-{port}",
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
            )
        procs = list(c.procs.values())
        for port in c.procs:
            wait_for(partial(answers_ping, port), "cluster node", procs=procs, seconds=10)
        ids: dict[int, str] = {}
        for port, (start, end) in zip(c.masters, SLOTS, strict=True):
            with redis.Redis(port=port, socket_timeout=1) as r:
                r.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
                ids[port] = r.execute_command("CLUSTER", "MYID").decode()
        with redis.Redis(port=c.masters[0], socket_timeout=1) as r:
            for port in [*c.masters[1:], *c.replicas]:
                r.execute_command("CLUSTER", "MEET", "127.0.0.1", port)

        def all_met() -> bool:
            for port in c.procs:
                with redis.Redis(port=port, socket_timeout=1) as r:
                    nodes = r.execute_command("CLUSTER", "NODES").decode().splitlines()
                if len(nodes) < len(c.procs) or any("handshake" in n for n in nodes):
                    return False
            return True

        wait_for(all_met, "cluster meet", procs=procs, seconds=15)
        for replica, master in zip(c.replicas, c.masters[: len(c.replicas)], strict=True):
            with redis.Redis(port=replica, socket_timeout=1) as r:
                r.execute_command("CLUSTER", "REPLICATE", ids[master])

        def healthy() -> bool:
            for port in c.procs:
                with redis.Redis(port=port, socket_timeout=1) as r:
                    if r.cluster("INFO")["cluster_state"] != "ok":
                        return False
            for master in c.masters[: len(c.replicas)]:
                info = _info(master, "replication")
                if not isinstance(info.get("slave0"), dict) or info["slave0"]["state"] != "online":
                    return False
            return True

        wait_for(healthy, "cluster state ok", procs=procs, seconds=20)
    except BaseException:
        c.stop()
        raise
    return c


@pytest.fixture(scope="session")
def cluster_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RedisClusterSet]]:
    """Start a fresh cluster per call (a test that kills nodes spends one)."""
    started: list[RedisClusterSet] = []

    def make(*, replicas: bool = True) -> RedisClusterSet:
        started.append(start_cluster(tmp_path_factory.mktemp("cluster"), replicas=replicas))
        return started[-1]

    try:
        yield make
    finally:
        for c in started:
            c.stop()


@pytest.fixture(scope="session")
def redis_cluster(cluster_factory: Callable[..., RedisClusterSet]) -> RedisClusterSet:
    """A shared healthy cluster, three masters with a replica each."""
    return cluster_factory()
