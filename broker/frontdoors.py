"""Which front doors a config switches on, beyond the always-on OIDC API and probes."""

from __future__ import annotations

from fastapi import APIRouter

from broker.config import Config
from broker.runtime import StartupHook


def routers(config: Config) -> tuple[APIRouter, ...]:
    return ()


def startup_hooks(config: Config) -> tuple[StartupHook, ...]:
    return ()
