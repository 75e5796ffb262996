"""Which front doors a config switches on, beyond the always-on OIDC API."""

from __future__ import annotations

from broker.app import StartupHook
from broker.config import Config


def startup_hooks(config: Config) -> tuple[StartupHook, ...]:
    return ()
