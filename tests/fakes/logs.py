"""Every log line the broker writes and every audit event, kept so tests can look for leaks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

H = TypeVar("H", bound=logging.Handler)


class LogCapture(logging.Handler):
    """Every log record of every logger, formatted, so tests can look for leaked secrets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # botocore at DEBUG logs signed requests; only the tests' own SDK clients (and the
        # stand-in's console) use it here — the broker never does.
        if record.name.startswith(("botocore", "boto3", "urllib3")):
            return
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


class BrokerLogs(LogCapture):
    """Every record but the test's own HTTP clients (the "browser", on the main thread): those
    log the URLs the browser follows, which do carry sign-in tokens by design."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")) and record.threadName == "MainThread":
            return
        super().emit(record)


@contextmanager
def capturing(handler: H) -> Iterator[H]:
    """Attach ``handler`` to the root logger at DEBUG; restore the root logger on the way out."""
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def read_audit(path: Path) -> list[dict[str, Any]]:
    """The audit events written so far, one JSON object a line."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_nothing_leaked(secrets: Sequence[str], logs: LogCapture, audit_path: Path) -> None:
    """The property that matters most: no secret in any log line or audit event."""
    text = "\n".join(logs.lines) + (audit_path.read_text() if audit_path.exists() else "")
    assert secrets, "the tests should have produced secrets to look for"
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{len(leaked)} secret(s) reached a log line or audit event"
