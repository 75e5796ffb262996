"""Process-wide settings: server, AWS endpoints and audit."""

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
    # Secrets being retired: they still open sealed session records and verify cookies, but
    # nothing new is sealed or signed with them. Rotation: add the new secret as
    # session_secret(_file), move the old one here, remove it after session_max_seconds.
    previous_session_secret_files: list[Path] = Field(default_factory=list, max_length=5)
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
        value = self.session_secret.get_secret_value() if self.session_secret else None
        if value is not None and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"session_secret must be at least {MIN_SECRET_BYTES} bytes")
        return self

    def previous_secrets(self) -> list[bytes]:
        return [
            _read_secret(p, "server.previous_session_secret_files")
            for p in self.previous_session_secret_files
        ]

    def secret(self) -> bytes | None:
        if self.session_secret is not None:
            return self.session_secret.get_secret_value().encode()
        if self.session_secret_file is not None:
            return _read_secret(self.session_secret_file, "server.session_secret_file")
        return None


# Sealed session records derive AES keys from these secrets (broker/seal.py).
MIN_SECRET_BYTES = 16


def _read_secret(path: Path, what: str) -> bytes:
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read: {exc.strerror}") from None
    if len(value) < MIN_SECRET_BYTES:
        raise ConfigError(f"{what}: {path} holds fewer than {MIN_SECRET_BYTES} bytes")
    return value


class AwsSettings(Strict):
    partition: Partition = "aws"
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    sts_endpoint: str | None = None
    federation_endpoint: str | None = None
    # One attempt's bound, and the whole request's (every attempt and backoff included).
    sts_timeout_seconds: float = Field(5.0, gt=0, le=60)
    sts_deadline_seconds: float = Field(10.0, gt=0, le=120)
    # STS redeems a SAML assertion only within 5 minutes of its IssueInstant
    # ("ExpiredTokenException: Token must be redeemed within 5 minutes of issuance"): a
    # pass-through browser session goes back through the IdP before that. Lower only to
    # re-authenticate sooner (tests use seconds).
    saml_redemption_seconds: float = Field(300, gt=0, le=300)
    # Attempts on throttling and transient failures: at 30 % throttling, 5 attempts leave
    # 0.3^5 ≈ 0.2 % of requests refused (bench/faults.py targets ≥ 99 % through).
    sts_max_attempts: int = Field(5, ge=1, le=10)
    sts_retry_base_seconds: float = Field(0.1, ge=0, le=10)
    # Connections to STS: at most this many open at once (sized so that one worker's CPU,
    # not the pool, is the limit at 100 ms of STS latency: 512 / 0.1 s > ~3,700 req/s per
    # worker measured in bench/); closed after this long unused.
    sts_max_connections: int = Field(512, ge=1, le=10_000)
    sts_idle_seconds: float = Field(30.0, gt=0, le=3600)
    # "native": the lean pooled transport; "httpx": the general-purpose client (measured
    # slower in bench/, kept for proxies the native transport does not speak).
    sts_transport: Literal["native", "httpx"] = "native"
    # STS counts requests per account and Region, every caller together, with a token
    # bucket (AWS Security Blog, "How to monitor and query IAM resources at scale, part 2"),
    # at 600/s (reported e.g. in awslabs/mountpoint-s3#1358) that cannot be raised (AWS
    # re:Post, "iam-sts-throttling-error"). The broker refuses (503 StsRateLimited) a bit
    # before that. Per process: divide it among workers and replicas. null: no limit.
    sts_rate_per_account: float | None = Field(500.0, gt=0, le=100_000)
    sts_burst_per_account: int = Field(100, ge=1, le=100_000)
    # Identical concurrent requests (same proof, role and options) share one STS call; at
    # most this many wait on one call, the rest are refused (StsRateLimited).
    sts_single_flight: bool = True
    sts_single_flight_max_waiters: int = Field(1000, ge=1, le=1_000_000)
    # This many consecutive transport failures or 5xx from STS, within the window, open the
    # breaker: calls fail fast (503 StsUnavailable) for the cool-down, then one probe decides.
    sts_breaker_failures: int = Field(5, ge=1, le=1000)
    sts_breaker_window_seconds: float = Field(30.0, gt=0, le=3600)
    sts_breaker_cooldown_seconds: float = Field(15.0, gt=0, le=3600)
    # GET /v1/container-credentials: serve credentials issued for the same token, role and
    # options again (why it is on, and its limits: broker/aws/cache.py). Never past the
    # token's expiry, never older than max_age, never with less than min_remaining left.
    container_cache: bool = True
    container_cache_size: int = Field(10_000, ge=1, le=1_000_000)
    container_cache_max_age_seconds: int = Field(300, ge=1, le=3600)
    container_cache_min_remaining_seconds: int = Field(900, ge=300, le=43200)

    @field_validator("sts_endpoint", "federation_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, "endpoint").rstrip("/")

    def sts_url(self) -> str:
        return self.sts_endpoint or partition(self.partition).sts_url(self.region)

    def federation_url(self) -> str:
        return self.federation_endpoint or partition(self.partition).federation_url


class AuditSettings(Strict):
    # Where audit events go: "-" for standard output, or a file path.
    path: str = "-"
