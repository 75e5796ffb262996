"""redis-py clients from StoreSettings: one Redis, Sentinel or Cluster, with TLS and ACL auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from broker.config import StoreSettings

# A reconnect after a failover or a dropped connection is worth two quick tries; the
# store's own deadline (timeout_seconds) bounds them all.
RETRIES = 2


@dataclass
class Clients:
    """The client the store talks to, and what else must be closed with it."""

    redis: Redis | RedisCluster
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def connect(settings: StoreSettings) -> Clients:
    kwargs = _connection_kwargs(settings)
    if settings.sentinels is not None:
        assert settings.service_name is not None  # the config validator pairs them
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            settings.sentinel_addresses(),
            sentinel_kwargs=_sentinel_kwargs(settings),
            **kwargs,
        )
        master = sentinel.master_for(settings.service_name)
        return Clients(master, [sentinel.aclose])
    if settings.cluster_nodes is not None:
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.cluster_addresses()],
            require_full_coverage=True,
            **kwargs,
        )
        return Clients(cluster)
    if settings.uses_tls():
        kwargs.pop("ssl")  # the rediss:// scheme already picks the TLS connection class
    return Clients(Redis.from_url(settings.url, **kwargs))


def _connection_kwargs(settings: StoreSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.timeout_seconds,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), RETRIES),
        "username": settings.username,
        "password": settings.password(),
    }
    kwargs.update(_tls_kwargs(settings))
    return kwargs


def _sentinel_kwargs(settings: StoreSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.timeout_seconds,
        "password": settings.sentinel_password(),
    }
    kwargs.update(_tls_kwargs(settings))
    return kwargs


def _tls_kwargs(settings: StoreSettings) -> dict[str, Any]:
    if not settings.uses_tls():
        return {}
    # Verification is pinned on: a store that can forge replay entries and sessions
    # must prove its name like any other peer.
    return {
        "ssl": True,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": None if settings.ca_file is None else str(settings.ca_file),
    }
