"""Async STS client for the two unsigned calls: AssumeRoleWithWebIdentity and AssumeRoleWithSAML.

Not boto3 (blocking, ~1.9 ms of CPU a call) nor httpx/aiohttp (0.3-2 ms): this call is on
every credential request, so it goes through the lean pooled transport in aws.transport.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from broker.aws.arn import account_of
from broker.aws.breaker import Admission, CircuitBreaker
from broker.aws.flight import FlightFull, SingleFlight
from broker.aws.limits import AccountLimiter, retry_after
from broker.aws.observer import StsObserver, Unobserved
from broker.aws.replies import Failure, credentials, parse_error, translate
from broker.aws.transport import HttpxTransport, PooledTransport, TransportError
from broker.config import AwsSettings
from broker.errors import StsRateLimited, StsUnavailable
from broker.identity import Credentials, StsAction, StsCall

log = logging.getLogger(__name__)
# A retry is worth starting only with at least this long left before the deadline.
_MIN_ATTEMPT_SECONDS = 0.05
_MAX_BACKOFF = 5.0


class RetryBudget:
    """A token bucket shared by all calls: retries spend, successes refund. When STS keeps
    failing we stop multiplying its load. A retry after throttling costs less than one
    after a failure: the throttled call did no work at STS, the jittered backoff already
    slows us down, and the per-account limit keeps us under STS's quota — so a 30 %
    throttling rate still lets ≥ 99 % of requests through (bench/faults.py)."""

    def __init__(
        self, capacity: int = 100, retry_cost: int = 5, throttle_cost: int = 1, refund: int = 1
    ) -> None:
        self._capacity = capacity
        self._tokens = capacity
        self._cost = retry_cost
        self._throttle_cost = throttle_cost
        self._refund = refund

    def spend(self, *, throttled: bool = False) -> bool:
        cost = self._throttle_cost if throttled else self._cost
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def succeed(self) -> None:
        self._tokens = min(self._capacity, self._tokens + self._refund)


@dataclass(frozen=True, slots=True)
class StsRequest:
    """One AssumeRoleWith* request, ready to send: the form body (which holds the proof, so
    it lives only as long as the request), the account whose quota it spends, and a digest
    of the body that names it for single flight and the credentials cache."""

    action: StsAction
    body: bytes = field(repr=False)
    account: str
    key: bytes


def sts_request(
    call: StsCall, *, duration: int, policy: str | None = None, policy_arns: tuple[str, ...] = ()
) -> StsRequest:
    form = {
        "Action": call.action,
        "Version": "2011-06-15",
        "DurationSeconds": str(duration),
        **call.params,
    }
    if policy:
        form["Policy"] = policy
    for i, arn in enumerate(policy_arns, start=1):
        form[f"PolicyArns.member.{i}.arn"] = arn
    body = form_body(form)
    return StsRequest(call.action, body, account_of(call.params["RoleArn"]), _digest(body))


def _digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


class StsClient:
    """The only module that talks to STS. In front of every call, in this order: single
    flight (identical concurrent requests share one call), the endpoint's circuit breaker
    (fail fast while STS is down), the per-(account, Region) limit (refuse before STS
    throttles); then retries with full jitter within a shared budget."""

    def __init__(
        self,
        settings: AwsSettings,
        *,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        observer: StsObserver | None = None,
    ) -> None:
        self._settings = settings
        self._url = settings.sts_url()
        self._rng = rng
        self._sleep = sleep
        self._monotonic = clock
        self._budget = RetryBudget()
        self._transport: PooledTransport | HttpxTransport | None = None
        self._observer: StsObserver = observer or Unobserved()
        self._limiter = (
            AccountLimiter(
                settings.sts_rate_per_account, settings.sts_burst_per_account, clock=clock
            )
            if settings.sts_rate_per_account is not None
            else None
        )
        self.breaker = CircuitBreaker(
            failures=settings.sts_breaker_failures,
            window=settings.sts_breaker_window_seconds,
            cooldown=settings.sts_breaker_cooldown_seconds,
            clock=clock,
            on_change=lambda state: self._observer.sts_breaker(self._url, state),
        )
        self._flight: SingleFlight[Credentials] | None = (
            SingleFlight(max_waiters=settings.sts_single_flight_max_waiters)
            if settings.sts_single_flight
            else None
        )
        self.calls = 0  # HTTP requests sent, for /metrics and tests

    async def start(self) -> None:
        s = self._settings
        connect_timeout = min(2.0, s.sts_timeout_seconds)
        transport = PooledTransport if s.sts_transport == "native" else HttpxTransport
        self._transport = transport(
            self._url,
            timeout=s.sts_timeout_seconds,
            connect_timeout=connect_timeout,
            max_connections=s.sts_max_connections,
            idle_seconds=s.sts_idle_seconds,
        )
        self._observer.sts_breaker(self._url, self.breaker.state, changed=False)

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def assume(
        self,
        call: StsCall,
        *,
        duration: int,
        policy: str | None = None,
        policy_arns: tuple[str, ...] = (),
    ) -> Credentials:
        """One AssumeRoleWith* call; retried (full jitter, within the budget) only when STS
        throttles or fails transiently."""
        return await self.send(
            sts_request(call, duration=duration, policy=policy, policy_arns=policy_arns)
        )

    async def send(self, request: StsRequest) -> Credentials:
        if self._flight is None:
            return await self._exchange(request)
        try:
            return await self._flight.run(
                request.key, lambda: self._exchange(request), self._observer.sts_joined
            )
        except FlightFull:
            raise StsRateLimited(
                "Too many identical requests are waiting on AWS STS; try again shortly.",
                headers={"Retry-After": "1"},
            ) from None

    async def _exchange(self, request: StsRequest) -> Credentials:
        return credentials(await self._call(request), request.action)

    async def _call(self, request: StsRequest) -> bytes:
        if self._transport is None:
            raise RuntimeError("StsClient.start() was not awaited")
        attempts = self._settings.sts_max_attempts
        # The whole request, every attempt and backoff included, ends by this deadline.
        deadline = self._monotonic() + self._settings.sts_deadline_seconds
        for attempt in range(1, attempts + 1):
            admission = self._admit(request, first=attempt == 1)
            if admission is None:
                break  # the breaker opened or the limit ran out: no more retries
            failure: Failure
            try:
                self.calls += 1
                left = max(0.001, deadline - self._monotonic())
                async with asyncio.timeout(left):
                    response = await self._transport.post(request.body)
            except (TransportError, TimeoutError) as exc:
                self.breaker.failed(admission)
                failure = Failure("ConnectionError", str(exc) or "deadline reached", 0)
            except BaseException:
                self.breaker.abandoned(admission)
                raise
            else:
                if response.status >= 500:
                    self.breaker.failed(admission)
                else:
                    self.breaker.succeeded(admission)
                if response.status == 200:
                    self._budget.succeed()
                    return response.body
                failure = parse_error(response.body, response.status)
            if not failure.retryable:
                raise translate(failure, request.action)
            if attempt == attempts:
                break
            # Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter").
            cap = min(_MAX_BACKOFF, self._settings.sts_retry_base_seconds * 2**attempt)
            pause = self._rng() * cap
            # A retry that could not finish before the deadline is not started.
            if self._monotonic() + pause >= deadline - _MIN_ATTEMPT_SECONDS:
                break
            if not self._budget.spend(throttled=failure.throttled):
                break
            await self._sleep(pause)
            log.info("retrying %s after %s (attempt %d)", request.action, failure.code, attempt + 1)
        raise translate(failure, request.action)

    def _admit(self, request: StsRequest, *, first: bool) -> Admission | None:
        """The breaker, then the limit. A first attempt they stop is refused at once, with no
        network call; a retry they stop is not made (the caller gets the last failure)."""
        admission = self.breaker.admit()
        if admission.wait:
            if not first:
                return None
            self._observer.sts_breaker_refused(self._url)
            raise StsUnavailable(
                "AWS STS is failing; the broker is not calling it for a few seconds.",
                log_detail=f"circuit breaker open for {self._url}",
                headers={"Retry-After": retry_after(admission.wait)},
            )
        wait = self._limiter.take(request.account, self._settings.region) if self._limiter else 0.0
        if not wait:
            return admission
        self.breaker.abandoned(admission)
        if not first:
            return None
        self._observer.sts_rate_limited(request.account, self._settings.region)
        raise StsRateLimited(
            f"Too many requests to AWS STS for account {request.account}; try again shortly.",
            headers={"Retry-After": retry_after(wait)},
        )


def form_body(form: Mapping[str, str]) -> bytes:
    """application/x-www-form-urlencoded. A JWT or base64 assertion is kilobytes of characters
    that need no escaping (base64url) or only three (+/=): check with one regex instead of
    quoting character by character, which bench/ measured at ~30 µs for a JWT and ~280 µs
    for an issuer-mode assertion."""
    return "&".join(f"{k}={_encode(v)}" for k, v in form.items()).encode("ascii")


def _encode(value: str) -> str:
    if _UNRESERVED.fullmatch(value):
        return value
    if _BASE64.fullmatch(value):
        return value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return quote_plus(value)


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/=_.~-]*")
