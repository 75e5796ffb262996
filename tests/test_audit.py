"""The audit trail: one event (and one counted decision) per decision, none for a device
poll's "not yet"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker.audit import Audit
from broker.config import AuditSettings
from broker.errors import (
    AccessDenied,
    AuthorizationPending,
    BrokerError,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
)
from tests.fakes.logs import read_audit

NOT_YET = [AuthorizationPending, SlowDown]  # RFC 8628 §3.5: the command line polls again
DECIDED = [InvalidGrant, ExpiredToken, AccessDenied]


def _decide(
    tmp_path: Path, error: type[BrokerError] | None
) -> tuple[list[dict[str, object]], list[tuple[str, str, str]]]:
    counted: list[tuple[str, str, str]] = []
    audit = Audit(AuditSettings(path=str(tmp_path / "audit.jsonl")), lambda *c: counted.append(c))

    async def decide() -> None:
        async with audit.decision("cli-token", "terminal", "127.0.0.1"):
            if error is not None:
                raise error("said to the client")

    try:
        if error is None:
            asyncio.run(decide())
        else:
            with pytest.raises(error):
                asyncio.run(decide())
    finally:
        audit.close()
    return read_audit(tmp_path / "audit.jsonl"), counted


@pytest.mark.parametrize("error", NOT_YET, ids=lambda e: e.code)
def test_a_poll_that_only_says_not_yet_is_neither_recorded_nor_counted(
    tmp_path: Path, error: type[BrokerError]
) -> None:
    assert _decide(tmp_path, error) == ([], [])


@pytest.mark.parametrize("error", DECIDED, ids=lambda e: e.code)
def test_every_other_refusal_is_one_event_and_one_count(
    tmp_path: Path, error: type[BrokerError]
) -> None:
    events, counted = _decide(tmp_path, error)
    [event] = events
    assert (event["outcome"], event["code"], event["event"]) == ("refused", error.code, "cli-token")
    assert event["error_id"]
    assert counted == [("terminal", "refused", error.code)]


def test_a_grant_is_one_event_and_one_count(tmp_path: Path) -> None:
    events, counted = _decide(tmp_path, None)
    assert [(e["outcome"], e["code"]) for e in events] == [("granted", "OK")]
    assert counted == [("terminal", "granted", "OK")]


def test_only_the_device_polls_not_yet_decide_nothing() -> None:
    def classes(cls: type[BrokerError]) -> list[type[BrokerError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in classes(sub))]

    assert {c for c in classes(BrokerError) if not c.decides} == set(NOT_YET)
