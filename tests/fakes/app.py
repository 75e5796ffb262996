"""The real app in process (httpx's ASGI transport, lifespan run): no socket, so unit tests can."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
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


@contextmanager
def blocking(config: Config) -> Iterator[tuple[BlockingPortal, InProcess]]:
    """in_process(config) on an event loop of its own thread, for synchronous callers (a
    Hypothesis test runs many examples against one app)."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(in_process(config)) as broker,
    ):
        yield portal, broker


class StoreWatch:
    """Records every store call that changed something, by wrapping the instance's methods."""

    def __init__(self, store: Any) -> None:
        self.changed: list[str] = []
        for name in ("add", "put", "take", "delete"):
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def watched(key: str, *args: Any) -> Any:
            result = await method(key, *args)
            if (
                name in ("put", "delete")
                or (name == "add" and result)
                or (name == "take" and result is not None)
            ):
                self.changed.append(f"{name} {key}")
            return result

        return watched
