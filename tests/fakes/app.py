"""The real app in process (httpx's ASGI transport, lifespan run): no socket, so unit tests can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from broker.app import create_app
from broker.config import Config, parse_config
from broker.runtime import Runtime

BASE_URL = "http://127.0.0.1:8080"
#: Nothing listens on the discard port: an STS call that slipped through would fail, and
#: `StsClient.calls` counts it first.
NO_STS = "http://127.0.0.1:9/"


def minimal_config(**server: Any) -> Config:
    """One OIDC issuer that nobody runs (tokens never verify), STS pointed at nothing."""
    return parse_config(
        {
            "server": {"base_url": BASE_URL, **server},
            "aws": {"sts_endpoint": NO_STS, "sts_max_attempts": 1},
            "identity_providers": {
                "ci": {
                    "type": "oidc",
                    "issuer": "https://oidc.example.invalid",
                    "audiences": ["sts.amazonaws.com"],
                }
            },
        }
    )


@dataclass
class InProcess:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt


@asynccontextmanager
async def in_process(config: Config) -> AsyncIterator[InProcess]:
    """create_app(config) with its lifespan open, and a client that talks to it directly."""
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield InProcess(app, client)
