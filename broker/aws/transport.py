"""Keep-alive HTTP/1.1 to one AWS endpoint: pooled asyncio connections, httptools parsing.

Why not aiohttp or httpx: STS is the one outbound call on every credential request, and
getSigninToken the second on every console click; bench/ measured a general-purpose client's
per-request machinery (~200 µs of CPU in aiohttp, ~660 µs in httpx) as the largest single
cost of either. Both need one host, a form POST (STS) or a query GET (the federation
endpoint), and answers of a few KB: a connection pool and a parser is all it takes.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit

import httptools
import httpx

from broker.aws.proxy import Tunnel, proxy_authorization, proxy_for

_MAX_RESPONSE = 1024 * 1024  # STS answers are a few KB; anything huge is not STS
# What a GET's query may hold: RFC 3986 query characters, percent-encoded or not, so that
# nothing a caller passes can end the request line (a space) or add a header (CR, LF).
_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")


class TransportError(Exception):
    """The request did not get a complete HTTP response (connect, reset, timeout, garbage)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self, max_response: int = _MAX_RESPONSE) -> None:
        self.transport: asyncio.Transport | None = None
        self._max_response = max_response
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._size = 0
        self._done: asyncio.Future[Response] | None = None
        self.received_any = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports don't subclass asyncio.Transport, but have its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed HTTP response: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(TransportError("connection closed before the response completed"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_response:
            self._fail(TransportError("response too large"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        done, self._done = self._done, None
        if done is not None and not done.done():
            done.set_result(Response(self._parser.get_status_code(), b"".join(self._body)))
        if not self._parser.should_keep_alive():
            self.close()

    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        assert self._done is None
        self._body, self._size, self.received_any = [], 0, False
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._done

    def idle(self) -> bool:
        return not self.closed and self._done is None and not self.transport_closing()

    def transport_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: TransportError) -> None:
        done, self._done = self._done, None
        if done is not None and not done.done():
            done.set_exception(exc)
        self.close()


class PooledTransport:
    """POST form bodies to, or GET queries of, one URL over a bounded pool of keep-alive
    connections.

    Like an AWS SDK on a corporate network: `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY` are
    honoured (an https endpoint is reached through a CONNECT tunnel, a plain-http one in
    absolute form), at most `max_connections` are open at once (callers beyond that wait,
    within their timeout), and a connection idle for `idle_seconds` is closed rather than
    reused after a NAT or load balancer has silently dropped it. A response body past
    `max_response` bytes is a TransportError."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "broker",
        max_connections: int = 512,
        idle_seconds: float = 30.0,
        max_response: int = _MAX_RESPONSE,
        proxy: str | Literal["environment"] | None = "environment",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (
            (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        )
        self.proxy = proxy_for(url) if proxy == "environment" else proxy
        host_header = parts.netloc.rsplit("@", 1)[-1]
        path = parts.path or "/"
        # Through a plain-http proxy the request line names the whole URL (RFC 9112 §3.2.2).
        target = f"http://{host_header}{path}" if self.proxy and not self._ssl else path
        proxy_auth = proxy_authorization(self.proxy) if self.proxy and not self._ssl else ""
        headers = (
            f"Host: {host_header}\r\nUser-Agent: {user_agent}\r\n"
            f"Accept-Encoding: identity\r\n{proxy_auth}"
        )
        self._head = (
            f"POST {target} HTTP/1.1\r\n{headers}"
            "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
        ).encode("ascii")
        # GET: the caller's query goes between these two.
        self._get_start = f"GET {target}?{parts.query + '&' if parts.query else ''}".encode("ascii")
        self._get_end = f" HTTP/1.1\r\n{headers}\r\n".encode("ascii")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max = max_connections
        self._idle_seconds = idle_seconds
        self._max_response = max_response
        # Idle connections with the time they were last used: newest on the right.
        self._idle: deque[tuple[_Connection, float]] = deque()
        self._slots: asyncio.Semaphore | None = None
        self.connections_opened = 0

    async def post(self, body: bytes) -> Response:
        return await self._send(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def get(self, query: str) -> Response:
        """GET the URL with `query` (already percent-encoded, e.g. by urlencode) appended."""
        if not _QUERY.fullmatch(query):
            raise ValueError("the query holds characters a request line cannot carry")
        return await self._send(self._get_start + query.encode("ascii") + self._get_end)

    async def _send(self, request: bytes) -> Response:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                self._expire_idle()
                while self._idle:
                    conn, _ = self._idle.pop()
                    if not conn.idle():
                        continue
                    try:
                        return await self._exchange(conn, request)
                    except TransportError:
                        # A kept-alive connection the server had already closed: try a fresh
                        # one, but only when nothing of a response arrived.
                        if conn.received_any:
                            raise
                return await self._exchange(await self._connect(), request)
        except TimeoutError:
            raise TransportError("timed out") from None

    def _expire_idle(self) -> None:
        deadline = time.monotonic() - self._idle_seconds
        while self._idle and self._idle[0][1] < deadline:
            self._idle.popleft()[0].close()

    async def _exchange(self, conn: _Connection, request: bytes) -> Response:
        try:
            response = await conn.send(request)
        except BaseException:
            conn.close()  # cancelled or failed mid-request: never reuse
            raise
        if conn.idle():
            self._idle.append((conn, time.monotonic()))
        return response

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await (self._via_proxy() if self.proxy else self._direct())
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect: {type(exc).__name__}") from None
        self.connections_opened += 1
        return conn

    async def _direct(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            self._new_connection,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._host if self._ssl else None,
        )
        return conn

    async def _via_proxy(self) -> _Connection:
        assert self.proxy is not None
        loop = asyncio.get_running_loop()
        proxy = urlsplit(self.proxy)
        proxy_host = proxy.hostname or ""
        proxy_port = proxy.port or (443 if proxy.scheme == "https" else 80)
        proxy_ssl = ssl.create_default_context() if proxy.scheme == "https" else None
        if self._ssl is None:  # plain http: requests go to the proxy in absolute form
            _, conn = await loop.create_connection(
                self._new_connection, proxy_host, proxy_port, ssl=proxy_ssl
            )
            return conn
        tunnel = Tunnel()
        transport, _ = await loop.create_connection(
            lambda: tunnel, proxy_host, proxy_port, ssl=proxy_ssl
        )
        authority = f"{self._host}:{self._port}"
        transport.write(
            f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
            f"{proxy_authorization(self.proxy)}\r\n".encode("ascii")
        )
        try:
            await tunnel.established
        except BaseException:
            transport.close()
            raise
        conn = self._new_connection()
        tls = await loop.start_tls(transport, conn, self._ssl, server_hostname=self._host)
        if tls is None:
            raise OSError("TLS over the proxy tunnel failed")
        conn.connection_made(tls)
        return conn

    def _new_connection(self) -> _Connection:
        return _Connection(self._max_response)

    async def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


class HttpxTransport:
    """The same contract on the shared general-purpose client (httpx), kept as the measured
    alternative: it reads the proxy environment and pools with the same limits, at a higher
    CPU cost per call (bench/oidc_exchange.py --sts-transport httpx)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int = 512,
        idle_seconds: float = 30.0,
    ) -> None:
        self._url = url
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=idle_seconds,
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            follow_redirects=False,
            trust_env=True,
        )

    async def post(self, body: bytes) -> Response:
        try:
            response = await self._client.post(self._url, content=body)
            data = await response.aread()
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}") from None
        if len(data) > _MAX_RESPONSE:
            raise TransportError("response too large")
        return Response(response.status_code, data)

    async def close(self) -> None:
        await self._client.aclose()
