"""getSigninToken on the pooled transport, against a scripted federation endpoint on loopback:
the request AWS documents, every bad answer a 502 FederationRefused, nothing logged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.aws.partitions import Partition
from broker.config import AwsSettings
from broker.console_url.federation import Federation
from broker.errors import FederationRefused
from broker.identity import Credentials
from tests.fakes.logs import LogCapture, capturing

pytestmark = [pytest.mark.anyio, pytest.mark.peers]

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE/session+token=="
SIGNIN_TOKEN = "VCQgs5qZZt3Q6fn8Tr5EXAMPLEsigninTOKEN"
CREDS = Credentials(
    "ASIAEXAMPLEEXAMPLE01",
    SECRET,
    SESSION_TOKEN,
    datetime(2099, 1, 1, tzinfo=UTC),
    "arn:aws:sts::111122223333:assumed-role/reader/alice",
)
DESTINATION = "https://console.aws.amazon.com/s3/home?region=eu-west-1"


def answer(status: str, body: bytes, *, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(),
        content_type,
        len(body),
        body,
    )


OK = answer("200 OK", json.dumps({"SigninToken": SIGNIN_TOKEN}).encode())


@dataclass
class Endpoint:
    """Answers every request with `reply` (None: hang up; "slow": never answer)."""

    reply: bytes | str | None = OK
    request_lines: list[str] = field(default_factory=list)
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.request_lines.append(head.split(b"\r\n", 1)[0].decode())
                if self.reply == "slow":
                    await asyncio.sleep(5)
                if not isinstance(self.reply, bytes):
                    break
                writer.write(self.reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, str]]:
    e = Endpoint()
    srv = await asyncio.start_server(e.handle, "127.0.0.1", 0)
    yield e, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/federation"
    srv.close()


def federation(url: str, *, timeout: float = 5.0) -> Federation:
    return Federation(AwsSettings(federation_endpoint=url), timeout=timeout)


async def test_get_signin_token_then_the_login_url(endpoint: tuple[Endpoint, str]) -> None:
    e, url = endpoint
    f = federation(url)
    try:
        login = await f.signin_url(
            CREDS, issuer="https://broker.example.com", destination=DESTINATION, duration=3600
        )
        again = await f.signin_url(CREDS, issuer="x", destination=DESTINATION, duration=None)
    finally:
        await f.close()
    # AWS IAM User Guide, "Enable custom identity broker access to the AWS console": a GET
    # with Action=getSigninToken, the session as JSON, and SessionDuration (900-43200).
    request, second = e.request_lines
    method, target, version = request.split(" ")
    assert (method, version) == ("GET", "HTTP/1.1")
    assert urlsplit(target).path == "/federation"
    query = parse_qs(urlsplit(target).query, strict_parsing=True)
    assert query["Action"] == ["getSigninToken"]
    assert query["SessionDuration"] == ["3600"]
    assert json.loads(query["Session"][0]) == {
        "sessionId": CREDS.access_key_id,
        "sessionKey": SECRET,
        "sessionToken": SESSION_TOKEN,
    }
    assert "SessionDuration" not in parse_qs(urlsplit(second.split(" ")[1]).query)
    assert e.connections == 1  # kept alive
    assert login.startswith(url + "?Action=login&")
    assert parse_qs(urlsplit(login).query) == {
        "Action": ["login"],
        "Issuer": ["https://broker.example.com"],
        "Destination": [DESTINATION],
        "SigninToken": [SIGNIN_TOKEN],
    }
    assert again.startswith(url + "?")


@dataclass(frozen=True)
class Bad:
    name: str
    reply: bytes | str | None


BAD_ANSWERS = [
    Bad("400", answer("400 Bad Request", b'{"SigninToken": "t"}')),
    Bad("500", answer("500 Internal Server Error", b"")),
    Bad("redirect", answer("302 Found", b"")),
    Bad("not json", answer("200 OK", b"<html>sign in</html>", content_type=b"text/html")),
    Bad("not utf-8", answer("200 OK", b'{"SigninToken": "\xff"}')),
    Bad("json list", answer("200 OK", b'["SigninToken"]')),
    Bad("no token", answer("200 OK", b'{"Token": "t"}')),
    Bad("empty token", answer("200 OK", b'{"SigninToken": ""}')),
    Bad("token not a string", answer("200 OK", b'{"SigninToken": 42}')),
    Bad("nested past recursion", answer("200 OK", b"[" * 60_000 + b"]" * 60_000)),
    Bad("too large", answer("200 OK", b'{"SigninToken": "' + b"t" * 70_000 + b'"}')),
    Bad("garbage", b"NOT HTTP AT ALL\r\n\r\n"),
    Bad("hang up", None),
    Bad("timeout", "slow"),
]


@pytest.mark.parametrize("case", BAD_ANSWERS, ids=attrgetter("name"))
async def test_a_bad_answer_is_federation_refused(
    case: Bad, endpoint: tuple[Endpoint, str]
) -> None:
    e, url = endpoint
    e.reply = case.reply
    f = federation(url, timeout=0.5)
    with capturing(LogCapture()) as logs:
        try:
            with pytest.raises(FederationRefused) as refused:
                await f.signin_url(CREDS, issuer="i", destination=DESTINATION, duration=900)
        finally:
            await f.close()
    assert (refused.value.code, refused.value.status) == ("FederationRefused", 502)
    said = " ".join([refused.value.detail, refused.value.log_detail or "", *logs.lines])
    assert not [s for s in (SECRET, SESSION_TOKEN, "sessionKey") if s in said]


async def test_an_unreachable_endpoint_is_federation_refused() -> None:
    f = federation("http://127.0.0.1:9/federation")
    with pytest.raises(FederationRefused, match="could not be reached"):
        await f.signin_url(CREDS, issuer="i", destination=DESTINATION, duration=900)
    await f.close()


async def test_nothing_logs_the_request_or_the_token(endpoint: tuple[Endpoint, str]) -> None:
    """The query carries the session's credentials and the answer the sign-in token: no
    logger, at any level, sees either."""
    _, url = endpoint
    f = federation(url)
    with capturing(LogCapture()) as logs:
        try:
            await f.signin_url(CREDS, issuer="i", destination=DESTINATION, duration=900)
        finally:
            await f.close()
    text = "\n".join(logs.lines)
    assert not [s for s in (SECRET, SESSION_TOKEN, SIGNIN_TOKEN, "getSigninToken") if s in text]


@pytest.mark.parametrize(
    ("partition", "endpoint"),
    [
        ("aws", "https://signin.aws.amazon.com/federation"),
        ("aws-us-gov", "https://signin.amazonaws-us-gov.com/federation"),
        ("aws-cn", "https://signin.amazonaws.cn/federation"),
    ],
)
async def test_the_partition_names_the_endpoint_unless_one_is_configured(
    partition: Partition, endpoint: str
) -> None:
    f = Federation(AwsSettings(partition=partition))
    assert f.endpoint == endpoint
    configured = AwsSettings(partition=partition, federation_endpoint="https://signin.test/f")
    assert Federation(configured).endpoint == "https://signin.test/f"
