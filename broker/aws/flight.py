"""Single flight: identical concurrent STS requests share one call and its one answer."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from broker.errors import BrokerError

T = TypeVar("T")


class FlightFull(Exception):
    """Too many callers are already waiting on this call."""


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[T]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[T]):
    """Calls in flight, by key (a digest of the request, never the request itself).

    The first caller of a key starts the call as a task of its own; callers of the same key
    while it runs wait on that task. Nobody's cancellation (a client hanging up) cancels it
    for the others. The entry goes when the call completes, so a later caller makes a new
    call: this shares a call, it caches nothing. Bounded: at most `max_waiters` callers join
    one call (more raise FlightFull), and at most `max_keys` calls are shared at once (past
    that, a caller runs its own call unshared)."""

    def __init__(self, *, max_waiters: int = 1000, max_keys: int = 10_000) -> None:
        self._max_waiters = max_waiters
        self._max_keys = max_keys
        self._flights: dict[bytes, _Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(
        self, key: bytes, call: Callable[[], Awaitable[T]], on_join: Callable[[], None]
    ) -> T:
        flight = self._flights.get(key)
        if flight is not None:
            if flight.waiters >= self._max_waiters:
                raise FlightFull
            flight.waiters += 1
            on_join()
            try:
                return await _outcome(flight.task)
            finally:
                flight.waiters -= 1
        if len(self._flights) >= self._max_keys:
            return await call()
        task: asyncio.Future[T] = asyncio.ensure_future(call())
        flight = self._flights[key] = _Flight(task)
        task.add_done_callback(lambda done: self._land(key, flight, done))
        return await _outcome(task)

    def _land(self, key: bytes, flight: _Flight[T], done: asyncio.Future[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a call nobody waits for anymore stays quiet


async def _outcome(task: asyncio.Future[T]) -> T:
    """The shared result, or the shared error as each caller's own copy: an error gets its
    error_id (one per refusal, in the response, the log and the audit event) per caller."""
    try:
        return await asyncio.shield(task)
    except BrokerError as exc:
        mine = copy.copy(exc)
        mine.error_id = None
        mine.extra, mine.headers = dict(exc.extra), dict(exc.headers)
        raise mine from None
