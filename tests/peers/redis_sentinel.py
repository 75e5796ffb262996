"""Redis Sentinel on loopback: one master, two replicas, three sentinels (quorum 2)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import redis

from tests.peers.redis_server import (
    answers_ping,
    free_port,
    redis_binary,
    start_redis,
    stop,
    wait_for,
)

SERVICE = "broker"
# Small, so a failover takes seconds: down after 1 s without a reply.
DOWN_AFTER_MS = 1000


@dataclass
class SentinelSet:
    service: str
    sentinel_ports: list[int]
    servers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.sentinel_ports]

    def master_port(self) -> int:
        """The master as the sentinels now see it."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=1) as s:
            _, port = s.sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def kill_master(self) -> int:
        """SIGKILL the master process (no goodbye to anyone); its port."""
        port = self.master_port()
        proc = self.servers[port]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return port

    def wait_promoted(self, old_port: int, seconds: float = 30) -> int:
        """Wait (bounded) until every sentinel names a new master that says it is one."""

        def promoted() -> bool:
            for sp in self.sentinel_ports:
                with redis.Redis(port=sp, socket_timeout=1) as s:
                    _, port = s.sentinel_get_master_addr_by_name(self.service)
                if int(port) == old_port:
                    return False
            with redis.Redis(port=self.master_port(), socket_timeout=1) as m:
                return bool(m.info("replication")["role"] == "master")

        wait_for(promoted, "sentinel failover", procs=self.sentinels, seconds=seconds)
        return self.master_port()

    def stop(self) -> None:
        stop([*self.sentinels, *self.servers.values()])


def start_sentinel_set(workdir: Path, replicas: int = 2, n_sentinels: int = 3) -> SentinelSet:
    ports = [free_port() for _ in range(1 + replicas)]
    master = ports[0]
    s = SentinelSet(SERVICE, [free_port() for _ in range(n_sentinels)])
    try:
        for i, port in enumerate(ports):
            extra = () if i == 0 else ("--replicaof", "127.0.0.1", str(master))
            s.servers[port] = start_redis(workdir / f"redis-{port}", port, *extra)
        procs = list(s.servers.values())
        for port in ports:
            wait_for(partial(answers_ping, port), "redis-server", procs=procs, seconds=10)

        def replicas_online() -> bool:
            with redis.Redis(port=master, socket_timeout=1) as m:
                info = m.info("replication")
            return (
                sum(1 for k, v in info.items() if k.startswith("slave") and v["state"] == "online")
                == replicas
            )

        wait_for(replicas_online, "replication", procs=procs, seconds=15)
        for sp in s.sentinel_ports:
            d = workdir / f"sentinel-{sp}"
            d.mkdir()
            conf = d / "sentinel.conf"  # sentinel rewrites its config: a file of its own
            conf.write_text(
                f"port {sp}\nbind 127.0.0.1\ndir {d}\nlogfile {d / 'sentinel.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            s.sentinels.append(
                subprocess.Popen(
                    [redis_binary(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

        def sentinels_agree() -> bool:
            for sp in s.sentinel_ports:
                with redis.Redis(port=sp, socket_timeout=1) as sen:
                    m = sen.sentinel_master(SERVICE)
                if m["num-other-sentinels"] < n_sentinels - 1 or m["num-slaves"] < replicas:
                    return False
            return True

        wait_for(sentinels_agree, "sentinels", procs=s.sentinels, seconds=20)
    except BaseException:
        s.stop()
        raise
    return s


@pytest.fixture(scope="session")
def sentinel_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], SentinelSet]]:
    """Start a fresh set per call (a failover test spends one); all stopped at the end."""
    started: list[SentinelSet] = []

    def make() -> SentinelSet:
        started.append(start_sentinel_set(tmp_path_factory.mktemp("sentinel")))
        return started[-1]

    try:
        yield make
    finally:
        for s in started:
            s.stop()


@pytest.fixture(scope="session")
def redis_sentinel(sentinel_factory: Callable[[], SentinelSet]) -> SentinelSet:
    """A shared healthy set for tests that do not kill anything."""
    return sentinel_factory()
