"""The pooled STS transport against real sockets: keep-alive, closes, chunking, timeouts, TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from broker.aws.transport import PooledTransport, TransportError
from tests.fakes.tls import self_signed_localhost

pytestmark = pytest.mark.peers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], "asyncio.Future[None] | object"]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


def ok(body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.mode = "echo"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                body = await read_request(reader)
                if self.mode == "close-after":
                    writer.write(ok(body, close=True))
                    await writer.drain()
                    break
                if self.mode == "chunked":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                    )
                elif self.mode == "slow":
                    await asyncio.sleep(5)
                elif self.mode == "garbage":
                    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                elif self.mode == "hang-up":
                    break
                else:
                    writer.write(ok(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, str]]:
    s = Server()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    yield s, f"http://127.0.0.1:{port}/"
    srv.close()
    await srv.wait_closed()


def transport(url: str, **kw: object) -> PooledTransport:
    return PooledTransport(url, timeout=float(kw.pop("timeout", 2.0)), connect_timeout=1.0, **kw)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_keep_alive_reuses_one_connection(server: tuple[Server, str]) -> None:
    s, url = server
    t = transport(url)
    for i in range(20):
        r = await t.post(b"n=%d" % i)
        assert (r.status, r.body) == (200, b"n=%d" % i)
    assert s.connections == 1
    assert t.connections_opened == 1
    await t.close()


@pytest.mark.anyio
async def test_concurrent_requests_each_get_their_own_response(server: tuple[Server, str]) -> None:
    _, url = server
    t = transport(url)
    bodies = [b"req=%d" % i for i in range(50)]
    results = await asyncio.gather(*(t.post(b) for b in bodies))
    assert [r.body for r in results] == bodies
    await t.close()


@pytest.mark.anyio
async def test_connection_close_is_honoured_and_a_fresh_one_used(
    server: tuple[Server, str],
) -> None:
    s, url = server
    s.mode = "close-after"
    t = transport(url)
    for i in range(3):
        assert (await t.post(b"%d" % i)).body == b"%d" % i
    assert s.connections == 3
    await t.close()


@pytest.mark.anyio
async def test_a_stale_kept_alive_connection_is_retried_on_a_fresh_one(
    server: tuple[Server, str],
) -> None:
    s, url = server
    t = transport(url)
    assert (await t.post(b"first")).status == 200
    s.mode = "hang-up"  # the pooled connection's next request meets a server that closes
    with pytest.raises(TransportError):
        await t.post(b"second")
    s.mode = "echo"
    assert (await t.post(b"third")).body == b"third"
    await t.close()


@pytest.mark.anyio
async def test_chunked_responses(server: tuple[Server, str]) -> None:
    s, url = server
    s.mode = "chunked"
    t = transport(url)
    assert (await t.post(b"x")).body == b"hello world"
    await t.close()


@pytest.mark.anyio
async def test_timeout_is_a_transport_error_and_the_connection_is_dropped(
    server: tuple[Server, str],
) -> None:
    s, url = server
    s.mode = "slow"
    t = transport(url, timeout=0.2)
    with pytest.raises(TransportError, match="timed out"):
        await t.post(b"x")
    s.mode = "echo"
    assert (await t.post(b"y")).body == b"y"
    assert t.connections_opened == 2
    await t.close()


@pytest.mark.anyio
async def test_garbage_is_a_transport_error(server: tuple[Server, str]) -> None:
    s, url = server
    s.mode = "garbage"
    t = transport(url)
    with pytest.raises(TransportError):
        await t.post(b"x")
    await t.close()


@pytest.mark.parametrize("query", ["a=b c", "a=b\r\nX-Injected: 1", "a=\u00e9", "a=b#c"])
@pytest.mark.anyio
async def test_a_get_query_that_could_change_the_request_is_refused(query: str) -> None:
    t = transport("http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="request line"):
        await t.get(query)
    assert t.connections_opened == 0


@pytest.mark.anyio
async def test_refused_connection() -> None:
    t = transport("http://127.0.0.1:9/")
    with pytest.raises(TransportError, match="cannot connect"):
        await t.post(b"x")


@pytest.mark.anyio
async def test_https_with_verification(tmp_path: Path) -> None:
    cert, key = self_signed_localhost(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    s = Server()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        t = transport(f"https://localhost:{port}/", ssl_context=trusting)
        assert (await t.post(b"tls")).body == b"tls"
        await t.close()
        # Without trusting the certificate, the handshake fails closed.
        untrusting = transport(f"https://localhost:{port}/")
        with pytest.raises(TransportError, match="cannot connect"):
            await untrusting.post(b"tls")
    finally:
        srv.close()
        await srv.wait_closed()
