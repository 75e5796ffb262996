"""One JSON line per decision: who, which IdP, which role, granted or refused and why, from where."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from broker.config import AuditSettings

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


class Audit:
    def __init__(self, settings: AuditSettings) -> None:
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

    def record(self, **fields: Any) -> None:
        event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        event.update({k: fields[k] for k in _FIELDS if fields.get(k) is not None})
        self._log.info(json.dumps(event, separators=(",", ":"), default=str))

    def close(self) -> None:
        for handler in list(self._log.handlers):
            handler.close()
            self._log.removeHandler(handler)
