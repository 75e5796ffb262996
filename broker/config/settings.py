"""Process-wide settings: server, AWS endpoints, store and audit."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from broker.aws.partitions import Partition, partition
from broker.config.base import Strict, check_url
from broker.errors import ConfigError


class ServerSettings(Strict):
    base_url: str = "http://127.0.0.1:8080"
    session_secret: SecretStr | None = None
    session_secret_file: Path | None = None
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Browser session lifetime cap; the assertion's own lifetime may shorten it.
    session_max_seconds: int = Field(8 * 3600, ge=60, le=43200)
    # Exactly one role granted and no deep link: skip the role picker, open the console.
    single_role_direct: bool = True
    # A file holding the bearer token Prometheus must send for /metrics (read on every
    # scrape, so it can rotate). Unset, /metrics is open: firewall the port then.
    metrics_token_file: Path | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return check_url(v, "base_url").rstrip("/")

    @model_validator(mode="after")
    def _one_secret(self) -> ServerSettings:
        if self.session_secret is not None and self.session_secret_file is not None:
            raise ValueError("set session_secret or session_secret_file, not both")
        return self

    def secret(self) -> bytes | None:
        if self.session_secret is not None:
            return self.session_secret.get_secret_value().encode()
        if self.session_secret_file is not None:
            try:
                return self.session_secret_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    f"server.session_secret_file: cannot read: {exc.strerror}"
                ) from None
        return None


class AwsSettings(Strict):
    partition: Partition = "aws"
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    sts_endpoint: str | None = None
    federation_endpoint: str | None = None
    sts_timeout_seconds: float = Field(5.0, gt=0, le=60)
    sts_max_attempts: int = Field(3, ge=1, le=10)
    sts_retry_base_seconds: float = Field(0.1, ge=0, le=10)
    # Connections to STS: at most this many open at once (sized so that one worker's CPU,
    # not the pool, is the limit at 100 ms of STS latency: 512 / 0.1 s > ~3,700 req/s per
    # worker measured in bench/); closed after this long unused.
    sts_max_connections: int = Field(512, ge=1, le=10_000)
    sts_idle_seconds: float = Field(30.0, gt=0, le=3600)
    # "native": the lean pooled transport; "httpx": the general-purpose client (measured
    # slower in bench/, kept for proxies the native transport does not speak).
    sts_transport: Literal["native", "httpx"] = "native"

    @field_validator("sts_endpoint", "federation_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, "endpoint").rstrip("/")

    def sts_url(self) -> str:
        return self.sts_endpoint or partition(self.partition).sts_url(self.region)

    def federation_url(self) -> str:
        return self.federation_endpoint or partition(self.partition).federation_url


class StoreSettings(Strict):
    url: str = "memory://"
    key_prefix: str = "broker:"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v == "memory://" or v.startswith(("redis://", "rediss://", "unix://"))):
            raise ValueError("store.url must be memory:// or a redis:// / rediss:// / unix:// URL")
        return v


class AuditSettings(Strict):
    # Where audit events go: "-" for standard output, or a file path.
    path: str = "-"
