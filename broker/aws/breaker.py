"""A circuit breaker per STS endpoint: after repeated transport failures, fail fast for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Admission:
    """The breaker's answer to one call: go (wait 0) or wait this long; `probe` marks the one
    call a half-open breaker lets through, whose result decides."""

    wait: float
    probe: bool = False


_GO = Admission(0.0)


class CircuitBreaker:
    """closed → (`failures` consecutive failures within `window` seconds) → open → (after
    `cooldown` seconds) → half-open: one probe goes out, everyone else still fails fast;
    its success closes the breaker, its failure opens it again for another cool-down.

    A *failure* is STS not answering or answering 5xx: the endpoint is unwell. Any other
    answer, a refusal included (AccessDenied, a validation error, throttling), proves it
    is up and counts as a success, so a caller's mistakes can never open it. Once it has
    opened, only the probe's result counts: late answers to calls sent before are ignored."""

    def __init__(
        self,
        *,
        failures: int,
        window: float,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._threshold = failures
        self._window = window
        self._cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self.state: BreakerState = "closed"
        self._streak = 0
        self._streak_started = 0.0
        self._open_until = 0.0
        self._probing = False

    def admit(self) -> Admission:
        """Whether a call may go out now, and whether it is the half-open probe; if not, the
        seconds until the breaker may let one through."""
        if self.state == "closed":
            return _GO
        now = self._clock()
        if self.state == "open":
            if now < self._open_until:
                return Admission(self._open_until - now)
            self._move("half_open")
        if self._probing:
            return Admission(1.0)  # the probe's answer is at most one STS timeout away
        self._probing = True
        return Admission(0.0, probe=True)

    def succeeded(self, admission: Admission) -> None:
        if self.state == "half_open" and admission.probe:
            self._probing = False
            self._move("closed")
        elif self.state == "closed":
            self._streak = 0

    def failed(self, admission: Admission) -> None:
        now = self._clock()
        if self.state == "half_open" and admission.probe:
            self._open(now)
        elif self.state == "closed":
            if self._streak == 0 or now - self._streak_started > self._window:
                self._streak, self._streak_started = 0, now
            self._streak += 1
            if self._streak >= self._threshold:
                self._open(now)

    def abandoned(self, admission: Admission) -> None:
        """An admitted call ended with no answer either way (cancelled): if it was the
        probe, the next caller probes instead."""
        if self.state == "half_open" and admission.probe:
            self._probing = False

    def _open(self, now: float) -> None:
        self._open_until = now + self._cooldown
        self._streak = 0
        self._probing = False
        self._move("open")

    def _move(self, state: BreakerState) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)
