"""The `store:` section: one Redis, Sentinel or Cluster; TLS and credentials from files only;
every contradiction refused at load with the key named."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from broker.config import StoreSettings, parse_config
from broker.errors import ConfigError

IDPS: dict[str, Any] = {
    "gh": {
        "type": "oidc",
        "issuer": "https://token.actions.githubusercontent.com",
        "audiences": ["sts.amazonaws.com"],
    }
}
SENTINEL: dict[str, Any] = {"sentinels": ["10.0.0.1:26379", "[fd00::2]:26379"], "service_name": "b"}
CLUSTER: dict[str, Any] = {"cluster_nodes": ["redis-0.redis:6379", "redis-1.redis:6379"]}


def load(store: dict[str, Any]) -> StoreSettings:
    return parse_config({"identity_providers": IDPS, "store": store}).store


@dataclass(frozen=True)
class Bad:
    name: str
    store: dict[str, Any]
    expected: tuple[str, ...]


BAD = [
    Bad("unknown-key", {"sentinel": ["h:1"]}, ("store.sentinel: unknown key",)),
    Bad(
        "url-and-sentinels",
        {"url": "redis://h:6379/0", **SENTINEL},
        ("store: set one of store.url, store.sentinels, not several",),
    ),
    Bad(
        "sentinels-and-cluster",
        {**SENTINEL, **CLUSTER},
        ("set one of store.sentinels, store.cluster_nodes, not several",),
    ),
    Bad(
        "sentinels-no-service",
        {"sentinels": ["h:26379"]},
        ("store.sentinels and store.service_name go together",),
    ),
    Bad(
        "service-no-sentinels",
        {"service_name": "b"},
        ("store.sentinels and store.service_name go together",),
    ),
    Bad("sentinels-empty", {"sentinels": [], "service_name": "b"}, ("store.sentinels",)),
    Bad("address-no-port", {"cluster_nodes": ["redis-0"]}, ("'redis-0' is not host:port",)),
    Bad("address-bad-port", {"cluster_nodes": ["h:99999"]}, ("'h:99999' is not host:port",)),
    Bad("address-userinfo", {"cluster_nodes": ["u:p@h:1"]}, ("is not host:port",)),
    Bad("address-path", {**SENTINEL, "sentinels": ["h:1/0"]}, ("'h:1/0' is not host:port",)),
    Bad("service-name", {**SENTINEL, "service_name": "a b"}, ("store.service_name",)),
    Bad(
        "password-in-url",
        {"url": "redis://:hunter2@h:6379/0"},
        ("store.url must not carry a password: use store.password_file",),
    ),
    Bad(
        "acl-password-in-url",
        {"url": "rediss://broker:hunter2@h:6379/0"},
        ("store.url must not carry a password",),
    ),
    Bad(
        "tls-flag-with-redis-url",
        {"url": "redis://h:6379/0", "tls": True},
        ("store.tls: for a single Redis, use a rediss:// URL",),
    ),
    Bad(
        "ca-without-tls",
        {**CLUSTER, "ca_file": "/etc/ca.pem"},
        ("store.ca_file needs TLS",),
    ),
    Bad(
        "ca-with-plain-url",
        {"url": "redis://h:6379/0", "ca_file": "/etc/ca.pem"},
        ("store.ca_file needs TLS",),
    ),
    Bad(
        "memory-with-password",
        {"password_file": "/run/p"},
        ("store.password_file needs a Redis store, not memory://",),
    ),
    Bad(
        "memory-with-acks",
        {"url": "memory://", "replica_acks": 1},
        ("store.replica_acks needs a Redis store",),
    ),
    Bad(
        "sentinel-password-without-sentinels",
        {**CLUSTER, "sentinel_password_file": "/run/p"},
        ("store.sentinel_password_file needs store.sentinels",),
    ),
    Bad(
        "ack-timeout-not-below-timeout",
        {**SENTINEL, "replica_ack_timeout_seconds": 2, "timeout_seconds": 2},
        ("store.replica_ack_timeout_seconds must be less than store.timeout_seconds",),
    ),
    Bad("acks-negative", {**SENTINEL, "replica_acks": -1}, ("store.replica_acks",)),
    Bad("timeout-zero", {**SENTINEL, "timeout_seconds": 0}, ("store.timeout_seconds",)),
    Bad("username-blank", {**SENTINEL, "username": "a b"}, ("store.username",)),
]


@pytest.mark.parametrize("case", BAD, ids=attrgetter("name"))
def test_bad_store_config_names_the_key(case: Bad) -> None:
    with pytest.raises(ConfigError) as info:
        load(case.store)
    for fragment in case.expected:
        assert fragment in info.value.detail


def test_sentinel_config() -> None:
    s = load(
        {
            **SENTINEL,
            "tls": True,
            "ca_file": "/etc/broker/redis-ca.pem",
            "username": "broker",
            "password_file": "/run/secrets/redis",
            "sentinel_password_file": "/run/secrets/sentinel",
        }
    )
    assert s.sentinel_addresses() == [("10.0.0.1", 26379), ("fd00::2", 26379)]
    assert s.uses_tls()
    assert not s.is_memory()
    assert s.acks() == 1  # failover-safe replay entries by default


def test_cluster_config_and_acks() -> None:
    s = load(CLUSTER)
    assert s.cluster_addresses() == [("redis-0.redis", 6379), ("redis-1.redis", 6379)]
    assert s.acks() == 1
    assert load({**CLUSTER, "replica_acks": 0}).acks() == 0


def test_single_redis_defaults() -> None:
    assert load({"url": "rediss://h:6380/0", "ca_file": "/ca.pem"}).uses_tls()
    assert load({"url": "redis://h:6379/0"}).acks() == 0
    assert load({}).is_memory()


def test_password_file_is_read_and_stripped(tmp_path: Path) -> None:
    f = tmp_path / "p"
    f.write_text("s3cret\n")
    s = load({"url": "redis://h:6379/0", "password_file": str(f)})
    assert s.password() == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize("content", [None, "", b"\xff\xfe"], ids=["missing", "empty", "binary"])
def test_bad_password_file_is_config_error(tmp_path: Path, content: str | bytes | None) -> None:
    f = tmp_path / "p"
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif content is not None:
        f.write_text(content)
    s = load({"url": "redis://h:6379/0", "password_file": str(f)})
    with pytest.raises(ConfigError, match=r"^store.password_file: "):
        s.password()
