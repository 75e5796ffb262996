"""A zero-work STS stand-in for the bench: a fixed AssumeRoleWithWebIdentity answer, optional delay.

The bench measures the broker, and on two cores every microsecond this process spends is
taken from the broker or the load generator, so this is raw asyncio with httptools' parser
rather than a framework app: it checks that the call is an AssumeRoleWithWebIdentity with a
token (else 400, which the bench counts as a failure) and answers after `--latency-ms`.

For the fault drill (bench/faults.py): `--throttle-pct P` answers that share of calls with
STS's own `Throttling` error (HTTP 400, ErrorResponse XML), `--hang` reads each request and
never answers, and `GET /__calls` returns how many STS calls arrived so far (as text).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import httptools
import uvloop

ROLE_ARN = "arn:aws:iam::111122223333:role/bench"


def response_bytes() -> bytes:
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>bench-user</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::111122223333:assumed-role/bench/bench-user</Arn>
      <AssumedRoleId>AROABENCHBENCHBENCH00:bench-user</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIABENCHBENCHBENCH0</AccessKeyId>
      <SecretAccessKey>benchbenchbenchbenchbenchbenchbenchbench</SecretAccessKey>
      <SessionToken>{"B" * 600}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <Provider>http://127.0.0.1</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
""".encode()
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
        "\r\n"
    ).encode()
    return head + body


BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: 0\r\n\r\n"


def throttling_bytes() -> bytes:
    """What STS sends when a caller exceeds its request rate (the Query API's ErrorResponse)."""
    body = b"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>Throttling</Code>
    <Message>Rate exceeded</Message>
  </Error>
  <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
</ErrorResponse>
"""
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
        "\r\n"
    ).encode()
    return head + body


def count_bytes(calls: int) -> bytes:
    body = str(calls).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Behaviour:
    """What every connection shares: the answers, the faults to inject, the call count."""

    def __init__(self, latency: float, throttle_share: float, hang: bool) -> None:
        self.ok = response_bytes()
        self.throttled = throttling_bytes()
        self.latency = latency
        self.throttle_share = throttle_share
        self.hang = hang
        self.calls = 0


class StsProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (aiohttp does not pipeline)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._b = behaviour
        self._url = b""
        self._body: list[bytes] = []
        self._parser = httptools.HttpRequestParser(self)
        self._transport: Any = None  # uvloop's TCPTransport is not an asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        form = b"".join(self._body)
        self._body.clear()
        b = self._b
        if self._parser.get_method() == b"GET" and self._url == b"/__calls":
            self._reply(count_bytes(b.calls))
            return
        b.calls += 1
        if b.hang:
            return  # read, never answered: the caller's timeout is all that ends it
        well_formed = b"Action=AssumeRoleWithWebIdentity" in form and b"WebIdentityToken=" in form
        if not well_formed:
            answer = BAD_REQUEST
        elif b.throttle_share and random.random() < b.throttle_share:
            answer = b.throttled
        else:
            answer = b.ok
        if b.latency > 0:
            asyncio.get_running_loop().call_later(b.latency, self._reply, answer)
        else:
            self._reply(answer)

    def _reply(self, answer: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)


async def serve(port: int, behaviour: Behaviour) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StsProtocol(behaviour), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--throttle-pct", type=float, default=0.0, help="answer this share with Throttling"
    )
    parser.add_argument("--hang", action="store_true", help="read requests, never answer")
    args = parser.parse_args(argv)
    if not 0 <= args.throttle_pct <= 100:
        parser.error("--throttle-pct must be within 0-100")
    behaviour = Behaviour(args.latency_ms / 1000, args.throttle_pct / 100, args.hang)
    uvloop.run(serve(args.port, behaviour))


if __name__ == "__main__":
    main()
