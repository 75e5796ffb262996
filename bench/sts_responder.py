"""A zero-work STS stand-in for the bench: a fixed AssumeRoleWithWebIdentity answer, optional delay.

The bench measures the broker, and on two cores every microsecond this process spends is
taken from the broker or the load generator, so this is raw asyncio with httptools' parser
rather than a framework app: it checks that the call is an AssumeRoleWithWebIdentity with a
token (else 400, which the bench counts as a failure) and answers after `--latency-ms`.
"""

from __future__ import annotations

import argparse
import asyncio
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


class StsProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (aiohttp does not pipeline)."""

    def __init__(self, ok: bytes, latency: float) -> None:
        self._ok = ok
        self._latency = latency
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

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        form = b"".join(self._body)
        self._body.clear()
        well_formed = b"Action=AssumeRoleWithWebIdentity" in form and b"WebIdentityToken=" in form
        answer = self._ok if well_formed else BAD_REQUEST
        if self._latency > 0:
            asyncio.get_running_loop().call_later(self._latency, self._reply, answer)
        else:
            self._reply(answer)

    def _reply(self, answer: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)


async def serve(port: int, latency: float) -> None:
    ok = response_bytes()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StsProtocol(ok, latency), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.port, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
