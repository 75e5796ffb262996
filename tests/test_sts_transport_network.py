"""The STS transport on a corporate network: proxies from the environment, NO_PROXY, a cap on
pooled connections, idle connections expired; and the httpx alternative on the same contract."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from broker.aws.proxy import proxy_for
from broker.aws.transport import HttpxTransport, PooledTransport, TransportError
from tests.fakes.tls import server_and_client

pytestmark = [pytest.mark.anyio, pytest.mark.peers]


@dataclass
class Origin:
    """An HTTP/1.1 server that echoes the body; counts connections and open ones."""

    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    request_lines: list[bytes] = field(default_factory=list)
    delay: float = 0.0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.request_lines.append(head.split(b"\r\n", 1)[0])
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,  # a GET
                )
                body = await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@dataclass
class Proxy:
    """A forward proxy: CONNECT tunnels, and absolute-form requests relayed to the origin."""

    origin_port: int
    connects: list[bytes] = field(default_factory=list)
    auth: list[bytes] = field(default_factory=list)
    relayed: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.split(b"\r\n")
        self.auth += [v for v in lines if v.lower().startswith(b"proxy-authorization")]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.origin_port)
        if lines[0].startswith(b"CONNECT "):
            self.connects.append(lines[0].split()[1])
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            self.relayed += 1
            up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except ConnectionError:
        pass
    finally:
        dst.close()


@pytest.fixture
async def origin() -> AsyncIterator[tuple[Origin, int]]:
    o = Origin()
    srv = await asyncio.start_server(o.handle, "127.0.0.1", 0)
    yield o, srv.sockets[0].getsockname()[1]
    srv.close()


async def test_https_goes_through_a_connect_tunnel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_ctx, client_ctx = server_and_client(tmp_path)
    origin = Origin()
    tls_srv = await asyncio.start_server(origin.handle, "127.0.0.1", 0, ssl=server_ctx)
    tls_port = tls_srv.sockets[0].getsockname()[1]
    proxy = Proxy(tls_port)
    proxy_srv = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy_port = proxy_srv.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://ops:s%3Acret@127.0.0.1:{proxy_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    t = PooledTransport(
        f"https://localhost:{tls_port}/", timeout=5, connect_timeout=2, ssl_context=client_ctx
    )
    try:
        assert (await t.post(b"one")).body == b"one"
        assert (await t.post(b"two")).body == b"two"  # the tunnel is kept alive
    finally:
        await t.close()
        tls_srv.close()
        proxy_srv.close()
    assert proxy.connects == [f"localhost:{tls_port}".encode()]
    expected = base64.b64encode(b"ops:s:cret")
    assert proxy.auth == [b"Proxy-Authorization: Basic " + expected]
    # TLS runs end to end: the proxy saw CONNECT and ciphertext, never a request line.
    assert origin.request_lines == [b"POST / HTTP/1.1", b"POST / HTTP/1.1"]


async def test_plain_http_goes_to_the_proxy_in_absolute_form(
    origin: tuple[Origin, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    o, port = origin
    proxy = Proxy(port)
    proxy_srv = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{proxy_srv.sockets[0].getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    t = PooledTransport(f"http://sts.example.test:{port}/", timeout=5, connect_timeout=2)
    try:
        assert (await t.post(b"hello")).body == b"hello"
    finally:
        await t.close()
        proxy_srv.close()
    assert proxy.relayed == 1
    assert o.request_lines == [f"POST http://sts.example.test:{port}/ HTTP/1.1".encode()]


async def test_get_goes_through_the_tunnel_and_in_absolute_form(
    tmp_path: Path, origin: tuple[Origin, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The federation endpoint's GET takes the same proxy paths as STS's POST."""
    server_ctx, client_ctx = server_and_client(tmp_path)
    tls_origin = Origin()
    tls_srv = await asyncio.start_server(tls_origin.handle, "127.0.0.1", 0, ssl=server_ctx)
    tls_port = tls_srv.sockets[0].getsockname()[1]
    plain, plain_port = origin
    tunnel, relay = Proxy(tls_port), Proxy(plain_port)
    tunnel_srv = await asyncio.start_server(tunnel.handle, "127.0.0.1", 0)
    relay_srv = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{tunnel_srv.sockets[0].getsockname()[1]}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{relay_srv.sockets[0].getsockname()[1]}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    https = PooledTransport(
        f"https://localhost:{tls_port}/federation",
        timeout=5,
        connect_timeout=2,
        ssl_context=client_ctx,
    )
    http = PooledTransport(
        f"http://signin.example.test:{plain_port}/federation", timeout=5, connect_timeout=2
    )
    try:
        assert (await https.get("Action=getSigninToken&Session=%7B%7D")).status == 200
        assert (await http.get("Action=login")).status == 200
    finally:
        await https.close()
        await http.close()
        tls_srv.close()
        tunnel_srv.close()
        relay_srv.close()
    assert tunnel.connects == [f"localhost:{tls_port}".encode()]
    assert tls_origin.request_lines == [
        b"GET /federation?Action=getSigninToken&Session=%7B%7D HTTP/1.1"
    ]
    assert relay.relayed == 1
    assert plain.request_lines == [
        f"GET http://signin.example.test:{plain_port}/federation?Action=login HTTP/1.1".encode()
    ]


async def test_a_refused_connect_is_a_transport_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(refuse, "127.0.0.1", 0)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}")
    t = PooledTransport("https://sts.us-east-1.amazonaws.com/", timeout=2, connect_timeout=1)
    with pytest.raises(TransportError, match="cannot connect"):
        await t.post(b"x")
    srv.close()


@pytest.mark.parametrize(
    ("url", "no_proxy", "bypassed"),
    [
        ("https://sts.us-east-1.amazonaws.com/", "", False),
        ("https://sts.us-east-1.amazonaws.com/", "*", True),
        ("https://sts.us-east-1.amazonaws.com/", "amazonaws.com", True),
        ("https://sts.us-east-1.amazonaws.com/", ".amazonaws.com", True),
        ("https://sts.us-east-1.amazonaws.com/", "example.com, sts.us-east-1.amazonaws.com", True),
        ("https://sts.us-east-1.amazonaws.com/", "east-1.amazonaws.com.evil", False),
        ("https://sts.us-east-1.amazonaws.com/", "amazonaws.com:8443", False),
        ("https://sts.us-east-1.amazonaws.com:8443/", "amazonaws.com:8443", True),
        ("https://notamazonaws.com/", "amazonaws.com", False),
    ],
)
def test_no_proxy(url: str, no_proxy: str, bypassed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (proxy_for(url) is None) is bypassed


def test_no_proxy_environment_means_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://sts.us-east-1.amazonaws.com/") is None


async def test_pool_is_capped(origin: tuple[Origin, int]) -> None:
    o, port = origin
    o.delay = 0.05
    t = PooledTransport(
        f"http://127.0.0.1:{port}/", timeout=5, connect_timeout=2, max_connections=3, proxy=None
    )
    try:
        bodies = [f"r{i}".encode() for i in range(12)]
        answers = await asyncio.gather(*(t.post(b) for b in bodies))
    finally:
        await t.close()
    assert [a.body for a in answers] == bodies
    assert o.most_open <= 3
    assert t.connections_opened == 3


async def test_idle_connections_expire(origin: tuple[Origin, int]) -> None:
    o, port = origin
    t = PooledTransport(
        f"http://127.0.0.1:{port}/", timeout=5, connect_timeout=2, idle_seconds=0.1, proxy=None
    )
    try:
        await t.post(b"a")
        await t.post(b"b")  # reused while fresh
        assert t.connections_opened == 1
        await asyncio.sleep(0.25)
        await t.post(b"c")  # the idle one was closed, a new one opened
        assert t.connections_opened == 2
        await asyncio.sleep(0.05)
        assert o.open_now == 1
    finally:
        await t.close()


async def test_httpx_transport_same_contract(origin: tuple[Origin, int]) -> None:
    _, port = origin
    t = HttpxTransport(f"http://127.0.0.1:{port}/", timeout=5, connect_timeout=2)
    try:
        answers = await asyncio.gather(*(t.post(f"h{i}".encode()) for i in range(5)))
    finally:
        await t.close()
    assert sorted(a.body for a in answers) == sorted(f"h{i}".encode() for i in range(5))
    assert {a.status for a in answers} == {200}
