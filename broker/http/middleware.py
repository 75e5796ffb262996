"""The one middleware: cap the body before anything parses it, set safe headers, count requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.errors import RequestTooLarge
from broker.http.metrics import Metrics
from broker.http.problems import problem

_SAFE_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class Guard:
    """Pure ASGI: Starlette's form limits don't cover urlencoded bodies, so the cap is here.
    Requests are counted by route template, never by raw path: anonymous 404s under any
    prefix must not grow the metrics without bound."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        metrics: Callable[[], Metrics | None],
        routes: Callable[[], Collection[str]],
    ) -> None:
        self.app = app
        self.max_body = max_body
        self._metrics = metrics
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            response = problem(
                RequestTooLarge(f"The request body is over {self.max_body} bytes."), scope
            )
            await response(scope, receive, send)
            self._observe(scope, 413, started)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise RequestTooLarge(f"The request body is over {self.max_body} bytes.")
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in _SAFE_HEADERS:
                    if k not in names:
                        headers.append((k, v))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited, send_with_headers)
        finally:
            self._observe(scope, status, started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        metrics = self._metrics()
        if metrics is None:
            return
        path: str = scope["path"]
        route = path if path in self._routes() else "other"
        metrics.request(route, status, time.perf_counter() - started)


def _content_length(scope: Scope) -> int | None:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None
