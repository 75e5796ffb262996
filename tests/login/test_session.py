"""The session `broker login` keeps: a private file per broker URL, credential-process with it
(cached by the token's hash), one clear line when it has ended, logout that always forgets."""

from __future__ import annotations

import argparse
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.cli import main
from broker.login.session import (
    LoginError,
    SessionGone,
    StoredSession,
    load,
    save,
    session_credentials,
    session_path,
)

URL = "https://broker.example.test"
DEAD = f"broker: your session at {URL} has ended; run: broker login --url {URL}\n"


def _stored(token: str = "bst_one", hours: float = 8) -> StoredSession:  # noqa: S107
    expires = (datetime.now(UTC) + timedelta(hours=hours)).timestamp()
    return StoredSession(URL, token, expires, "alice@example.com", "corp")


class Broker:
    """/cli/credentials as the broker answers it; records the bearer tokens it sees."""

    def __init__(self, status: int = 200, problem: dict[str, Any] | None = None) -> None:
        self.tokens: list[str] = []
        self.status, self.problem = status, problem

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/cli/credentials"
        self.tokens.append(request.headers["authorization"].removeprefix("Bearer "))
        if self.status != 200:
            return httpx.Response(self.status, json=self.problem)
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "Version": 1,
            "AccessKeyId": f"ASIA{len(self.tokens):016d}",
            "SecretAccessKey": "s",
            "SessionToken": "t",
            "Expiration": expires,
        }
        return httpx.Response(200, json=body)


def _args(tmp_path: Path, **over: Any) -> argparse.Namespace:
    values = {
        "url": URL,
        "role": "deployer",
        "duration": None,
        "cache_dir": str(tmp_path / "cache"),
        "no_cache": False,
        "token_file": None,
        "token_command": None,
    }
    values.update(over)
    return argparse.Namespace(**values)


def _run(broker: Broker, args: argparse.Namespace) -> dict[str, Any]:
    with httpx.Client(transport=httpx.MockTransport(broker.handle)) as http:
        out: dict[str, Any] = json.loads(session_credentials(args, http=http))
    return out


def test_the_session_file_is_private_and_written_whole(tmp_path: Path) -> None:
    path = save(str(tmp_path / "cache"), _stored())
    assert path == session_path(str(tmp_path / "cache"), URL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert URL not in path.name
    assert load(str(tmp_path / "cache"), URL) == _stored().__class__(**json.loads(path.read_text()))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_xdg_cache_home_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert session_path(None, URL).is_relative_to(tmp_path / "xdg" / "broker" / "sessions")


def test_a_session_file_others_could_write_is_not_used(tmp_path: Path) -> None:
    path = save(str(tmp_path / "cache"), _stored())
    path.chmod(0o622)
    assert load(str(tmp_path / "cache"), URL) is None


def test_credentials_are_cached_by_the_session_token(tmp_path: Path) -> None:
    broker = Broker()
    save(str(tmp_path / "cache"), _stored("bst_one"))
    first = _run(broker, _args(tmp_path))
    assert _run(broker, _args(tmp_path)) == first
    save(str(tmp_path / "cache"), _stored("bst_two"))  # a new login: a new key
    _run(broker, _args(tmp_path))
    assert broker.tokens == ["bst_one", "bst_two"]
    cached = [p for p in (tmp_path / "cache").iterdir() if p.is_file()]
    assert all("bst_" not in p.name for p in cached)


@pytest.mark.parametrize(
    "stored",
    [None, _stored(hours=-1)],
    ids=["no session", "expired"],
)
def test_no_live_session_is_said_in_one_line(
    tmp_path: Path, stored: StoredSession | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if stored is not None:
        save(str(tmp_path / "cache"), stored)
    code = main(
        ["credential-process", "--url", URL, "--role", "r", "--cache-dir", str(tmp_path / "cache")]
    )
    assert code == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == DEAD


def test_a_session_the_broker_ended_is_gone(tmp_path: Path) -> None:
    save(str(tmp_path / "cache"), _stored())
    broker = Broker(401, {"code": "SessionEnded", "detail": "ended"})
    with pytest.raises(SessionGone) as gone:
        _run(broker, _args(tmp_path))
    assert str(gone.value) == DEAD.removeprefix("broker: ").rstrip("\n")


def test_too_old_for_a_pass_through_role_says_what_the_broker_says(tmp_path: Path) -> None:
    save(str(tmp_path / "cache"), _stored())
    detail = f"Your sign-in is older than AWS accepts; run: broker login --url {URL}"
    broker = Broker(401, {"code": "ReauthenticationRequired", "detail": detail})
    with pytest.raises(LoginError) as refused:
        _run(broker, _args(tmp_path))
    assert not isinstance(refused.value, SessionGone)
    assert str(refused.value) == detail


def test_other_refusals_name_their_code(tmp_path: Path) -> None:
    save(str(tmp_path / "cache"), _stored())
    broker = Broker(403, {"code": "RoleNotGranted", "detail": "no", "error_id": "e1"})
    with pytest.raises(LoginError, match="RoleNotGranted: no"):
        _run(broker, _args(tmp_path))


def test_logout_forgets_the_session_even_when_the_broker_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "http://127.0.0.1:9"  # the discard port: nothing listens
    cache = str(tmp_path / "cache")
    stored = _stored()
    save(cache, StoredSession(url, stored.access_token, stored.expires_at, "a", "b"))
    assert main(["logout", "--url", url, "--cache-dir", cache]) == 1
    assert not session_path(cache, url).exists()
    err = capsys.readouterr().err
    assert "not revoked" in err
    assert "deleted" in err


def test_token_options_still_work_without_a_session(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("jwt")
    args = _args(tmp_path, token_file=str(token))
    assert os.path.exists(token)
    from broker.client import credential_process

    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"Expiration": "2000-01-01T00:00:00Z"})

    with httpx.Client(transport=httpx.MockTransport(handle)) as http:
        credential_process(args, http=http)
    assert seen == ["/v1/credentials"]


def test_broker_url_names_the_broker_when_url_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9"
    cache = str(tmp_path / "cache")
    stored = _stored()
    save(cache, StoredSession(url, stored.access_token, stored.expires_at, "a", "b"))
    monkeypatch.setenv("BROKER_URL", url)
    assert main(["logout", "--cache-dir", cache]) == 1
    assert not session_path(cache, url).exists()
    monkeypatch.delenv("BROKER_URL")
    with pytest.raises(SystemExit):
        main(["credential-process", "--role", "reader"])
    assert "--url" in capsys.readouterr().err
