"""One JSON line per decision: who, which IdP, which role, granted or refused and why, from where."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.config import AuditSettings
from broker.errors import BrokerError, new_error_id
from broker.identity import Credentials, Identity, RoleGrant

# Fields an audit event may carry. Anything else is dropped, so a caller cannot leak a
# secret into the audit trail by passing it along by mistake.
_FIELDS = (
    "event",
    "outcome",
    "code",
    "idp",
    "subject",
    "rule",
    "role",
    "client",
    "access_key_id",
    "expiration",
    "error_id",
    "front_door",
    "detail",
)
# Counts each decision: (front door, outcome, code).
DecisionCounter = Callable[[str, str, str], None]


@dataclass
class Trail:
    """What is known so far about a decision, written as one audit event at the end."""

    event: str
    front_door: str
    client: str | None
    idp: str | None = None
    subject: str | None = None
    rule: str | None = None
    role: str | None = None
    access_key_id: str | None = None
    expiration: datetime | None = None

    def identity(self, identity: Identity) -> Identity:
        self.idp, self.subject = identity.idp, identity.subject
        return identity

    def grant(self, grant: RoleGrant) -> None:
        self.rule, self.role = grant.rule, grant.arn

    def issued(self, creds: Credentials) -> None:
        self.access_key_id, self.expiration = creds.access_key_id, creds.expiration

    def fields(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "front_door": self.front_door,
            "client": self.client,
            "idp": self.idp,
            "subject": self.subject,
            "rule": self.rule,
            "role": self.role,
            "access_key_id": self.access_key_id,
            "expiration": self.expiration,
        }


class Audit:
    def __init__(self, settings: AuditSettings, counter: DecisionCounter | None = None) -> None:
        self._count = counter
        self._log = logging.getLogger(f"broker.audit.{id(self)}")
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        if not self._log.handlers:
            handler: logging.Handler
            if settings.path == "-":
                handler = logging.StreamHandler(sys.stdout)
            else:
                handler = logging.FileHandler(settings.path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._log.addHandler(handler)

    @asynccontextmanager
    async def decision(
        self, event: str, front_door: str, client: str | None
    ) -> AsyncIterator[Trail]:
        """Everything inside the block is one decision: granted when it completes, refused
        (with the error's code and error_id) when it raises a BrokerError. An error that
        decides nothing (a device poll's "not yet") passes through unrecorded and uncounted:
        a command line polls every few seconds while its person types the code."""
        trail = Trail(event, front_door, client)
        try:
            yield trail
        except BrokerError as exc:
            if not exc.decides:
                raise
            exc.error_id = exc.error_id or new_error_id()
            self.record(outcome="refused", code=exc.code, error_id=exc.error_id, **trail.fields())
            if self._count is not None:
                self._count(front_door, "refused", exc.code)
            raise
        self.record(outcome="granted", code="OK", **trail.fields())
        if self._count is not None:
            self._count(front_door, "granted", "OK")

    def record(self, **fields: Any) -> None:
        event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        event.update({k: fields[k] for k in _FIELDS if fields.get(k) is not None})
        self._log.info(json.dumps(event, separators=(",", ":"), default=str))

    def close(self) -> None:
        for handler in list(self._log.handlers):
            handler.close()
            self._log.removeHandler(handler)
