"""Where the replay cache, login state and sessions live: memory, one Redis, Sentinel or Cluster."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from broker.config.base import Strict
from broker.errors import ConfigError


class StoreSettings(Strict):
    """Where the replay cache, login state and browser sessions live.

    One of: `url` (memory:// for one process, or a single Redis), `sentinels` with
    `service_name` (Redis Sentinel), or `cluster_nodes` (Redis Cluster seed nodes).
    Credentials come from files only, so the YAML never holds a password.
    """

    url: str = "memory://"
    key_prefix: str = "broker:"
    sentinels: list[str] | None = Field(None, min_length=1)
    service_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    cluster_nodes: list[str] | None = Field(None, min_length=1)
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = Field(None, min_length=1, max_length=128, pattern=r"^\S+$")
    password_file: Path | None = None
    sentinel_password_file: Path | None = None
    # Replicas that must acknowledge a replay-cache entry (WAIT) before an assertion is
    # accepted, so a failover cannot forget it. Unset: 1 with sentinels or cluster_nodes.
    replica_acks: int | None = Field(None, ge=0, le=5)
    replica_ack_timeout_seconds: float = Field(0.5, gt=0, le=10)
    # The most one store operation may take, reconnects and retries included.
    timeout_seconds: float = Field(2.0, gt=0, le=30)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v == "memory://" or v.startswith(("redis://", "rediss://", "unix://"))):
            raise ValueError("store.url must be memory:// or a redis:// / rediss:// / unix:// URL")
        if urlsplit(v).password:
            raise ValueError("store.url must not carry a password: use store.password_file")
        return v

    @field_validator("sentinels", "cluster_nodes")
    @classmethod
    def _addresses(cls, v: list[str] | None) -> list[str] | None:
        for address in v or ():
            StoreSettings.host_port(address)
        return v

    @model_validator(mode="after")
    def _one_topology(self) -> StoreSettings:
        given = [
            name
            for name, on in (
                ("url", "url" in self.model_fields_set),
                ("sentinels", self.sentinels is not None),
                ("cluster_nodes", self.cluster_nodes is not None),
            )
            if on
        ]
        if len(given) > 1:
            raise ValueError(f"set one of store.{', store.'.join(given)}, not several")
        if (self.sentinels is None) != (self.service_name is None):
            raise ValueError("store.sentinels and store.service_name go together")
        redis_only = ("tls", "ca_file", "username", "password_file", "replica_acks")
        if self.is_memory():
            extra = [k for k in redis_only if k in self.model_fields_set]
            if extra:
                raise ValueError(f"store.{extra[0]} needs a Redis store, not memory://")
        if self.sentinel_password_file is not None and self.sentinels is None:
            raise ValueError("store.sentinel_password_file needs store.sentinels")
        if self.sentinels is None and self.cluster_nodes is None and self.tls:
            raise ValueError("store.tls: for a single Redis, use a rediss:// URL")
        if self.ca_file is not None and not self.uses_tls():
            raise ValueError("store.ca_file needs TLS (store.tls: true, or a rediss:// URL)")
        if self.replica_ack_timeout_seconds >= self.timeout_seconds:
            raise ValueError(
                "store.replica_ack_timeout_seconds must be less than store.timeout_seconds"
            )
        return self

    def is_memory(self) -> bool:
        return self.url == "memory://" and self.sentinels is None and self.cluster_nodes is None

    def uses_tls(self) -> bool:
        return self.tls or self.url.startswith("rediss://")

    def acks(self) -> int:
        """Replica acknowledgements a replay-cache write waits for."""
        if self.replica_acks is not None:
            return self.replica_acks
        return 0 if self.sentinels is None and self.cluster_nodes is None else 1

    def password(self) -> str | None:
        return self._read_password(self.password_file, "store.password_file")

    def sentinel_password(self) -> str | None:
        return self._read_password(self.sentinel_password_file, "store.sentinel_password_file")

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [self.host_port(a) for a in self.sentinels or ()]

    def cluster_addresses(self) -> list[tuple[str, int]]:
        return [self.host_port(a) for a in self.cluster_nodes or ()]

    @staticmethod
    def host_port(address: str) -> tuple[str, int]:
        """`host:port` or `[v6]:port`, as sentinels and cluster_nodes take them."""
        parts = urlsplit(f"//{address}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port or parts.username or parts.path or parts.query:
            raise ValueError(f"{address!r} is not host:port")
        return parts.hostname, port

    @staticmethod
    def _read_password(path: Path | None, what: str) -> str | None:
        if path is None:
            return None
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{what}: {path} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{what}: {path} is empty")
        return value
