"""`broker credential-process`: the cache trusts only the user's own files, is keyed by the
token, and bearer tokens never travel in clear off loopback."""

from __future__ import annotations

import argparse
import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.cli import main
from broker.client import CredentialProcessError, credential_process

URL = "https://broker.example.test"


class Broker:
    """A stand-in for the broker's /v1/credentials that records each bearer token it sees."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        self.tokens.append(token)
        expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        body = {
            "Version": 1,
            "AccessKeyId": f"ASIA{len(self.tokens):016d}",
            "SecretAccessKey": "secret",
            "SessionToken": f"session-for-{token}",
            "Expiration": expires,
        }
        return httpx.Response(200, json=body)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))


@pytest.fixture
def broker() -> Broker:
    return Broker()


FIRST_TOKEN = "token-one"


def args(tmp_path: Path, token: str = FIRST_TOKEN, **over: Any) -> argparse.Namespace:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    values: dict[str, Any] = {
        "url": URL,
        "role": "deployer",
        "token_file": str(token_file),
        "token_command": None,
        "duration": None,
        "cache_dir": str(tmp_path / "cache"),
        "no_cache": False,
    }
    values.update(over)
    return argparse.Namespace(**values)


def run(broker: Broker, ns: argparse.Namespace) -> dict[str, Any]:
    with broker.client() as http:
        out: dict[str, Any] = json.loads(credential_process(ns, http=http))
    return out


def test_the_second_run_uses_the_cache(tmp_path: Path, broker: Broker) -> None:
    first = run(broker, args(tmp_path))
    second = run(broker, args(tmp_path))
    assert first == second
    assert broker.tokens == ["token-one"]
    [cached] = (tmp_path / "cache").iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert "token-one" not in cached.name


def test_another_token_does_not_get_the_cached_credentials(tmp_path: Path, broker: Broker) -> None:
    """Same URL, role and token file, another identity in it: its own credentials."""
    run(broker, args(tmp_path, token="token-one"))
    other = run(broker, args(tmp_path, token="token-two"))
    assert broker.tokens == ["token-one", "token-two"]
    assert other["SessionToken"] == "session-for-token-two"


@pytest.mark.parametrize(
    "change", [{"role": "admin"}, {"duration": 1800}, {"url": URL + "/other"}], ids=str
)
def test_role_duration_and_url_key_the_cache(
    tmp_path: Path, broker: Broker, change: dict[str, Any]
) -> None:
    run(broker, args(tmp_path))
    run(broker, args(tmp_path, **change))
    assert len(broker.tokens) == 2


Spoil = Callable[[Path], None]


def _chmod(mode: int) -> Spoil:
    return lambda p: p.chmod(mode)


def _foreign_owner(p: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(p, 65534, 65534)


def _symlink_elsewhere(p: Path) -> None:
    elsewhere = p.parent.parent / "planted.json"
    elsewhere.write_text(p.read_text())
    elsewhere.chmod(0o600)
    p.unlink()
    p.symlink_to(elsewhere)


@pytest.mark.parametrize(
    ("target", "spoil", "why"),
    [
        ("file", _chmod(0o622), "writable by group or others"),
        ("file", _chmod(0o602), "writable by group or others"),
        ("file", _foreign_owner, "not owned by"),
        ("file", _symlink_elsewhere, "not a regular file"),
        ("dir", _chmod(0o770), "writable by group or others"),
        ("dir", _chmod(0o777), "writable by group or others"),
        ("dir", _foreign_owner, "not owned by"),
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", "spoil"),
)
def test_an_unsafe_cache_is_ignored_and_said(
    tmp_path: Path,
    broker: Broker,
    capsys: pytest.CaptureFixture[str],
    target: str,
    spoil: Spoil,
    why: str,
) -> None:
    """Someone else could have planted credentials for another role or account there."""
    run(broker, args(tmp_path))
    cache = tmp_path / "cache"
    [cached] = cache.iterdir()
    planted = json.loads(cached.read_text())
    planted["AccessKeyId"] = "ASIAPLANTEDBYSOMEONE"
    cached.write_text(json.dumps(planted))
    spoil(cached if target == "file" else cache)
    capsys.readouterr()

    got = run(broker, args(tmp_path))
    assert got["AccessKeyId"] != "ASIAPLANTEDBYSOMEONE"
    assert len(broker.tokens) == 2
    err = capsys.readouterr().err
    assert "not using the cache" in err
    assert why in err


def test_no_cache_never_touches_the_directory(tmp_path: Path, broker: Broker) -> None:
    run(broker, args(tmp_path, no_cache=True))
    run(broker, args(tmp_path, no_cache=True))
    assert len(broker.tokens) == 2
    assert not (tmp_path / "cache").exists()


def test_a_new_cache_directory_is_private(tmp_path: Path, broker: Broker) -> None:
    run(broker, args(tmp_path, cache_dir=str(tmp_path / "deep" / "cache")))
    assert stat.S_IMODE((tmp_path / "deep" / "cache").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "url",
    [
        "http://broker.example.test",
        "http://10.0.0.5:8080",
        "http://127.0.0.1.example.test",
        "http://localhost.example.test",
        "HTTP://broker.example.test",
    ],
)
def test_plain_http_off_loopback_is_refused(tmp_path: Path, broker: Broker, url: str) -> None:
    with pytest.raises(CredentialProcessError, match="https"):
        run(broker, args(tmp_path, url=url))
    assert broker.tokens == []


@pytest.mark.parametrize("url", ["ftp://broker.example.test", "broker.example.test", "https://"])
def test_a_url_that_is_not_http_is_refused(tmp_path: Path, broker: Broker, url: str) -> None:
    with pytest.raises(CredentialProcessError, match="URL"):
        run(broker, args(tmp_path, url=url))
    assert broker.tokens == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", URL]
)
def test_loopback_http_and_https_are_fine(tmp_path: Path, broker: Broker, url: str) -> None:
    run(broker, args(tmp_path, url=url))
    assert broker.tokens == ["token-one"]


def test_the_command_exits_non_zero_on_plain_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("token-one")
    argv = ["credential-process", "--url", "http://broker.example.test", "--role", "deployer"]
    assert main([*argv, "--token-file", str(token), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "plain http" in err
    assert "token-one" not in err
