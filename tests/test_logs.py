"""Server log lines: one record is one line, whatever a caller puts in a path or a header."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import httpx
import pytest

from broker.logs import LineFormatter, Scrub, escape_controls
from tests.fakes.servers import free_port, read_text, running, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
#: How every record starts (configure_logging's format): a line that does not is forged.
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def _format(msg: str, *args: object, exc: BaseException | None = None) -> str:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Scrub())
    record = logging.LogRecord("broker", logging.INFO, __file__, 1, msg, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert handler.filter(record)
    return handler.format(record)


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("/a\nb", "/a\\x0ab"),
        ("/a\r\nb", "/a\\x0d\\x0ab"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85next", "c1\\x85next"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("tab\tkept", "tab\\x09kept"),
        ("plain /path?q=1 ünïcödé", "plain /path?q=1 ünïcödé"),
    ],
)
def test_controls_are_escaped(raw: str, logged: str) -> None:
    assert escape_controls(raw) == logged
    assert _format("path=%s", raw).endswith(f"path={logged}")


def test_a_forged_line_stays_on_its_record() -> None:
    forged = "/x\n2030-01-01 00:00:00,000 INFO broker: granted admin"
    assert len(_format("refused path=%s", forged).splitlines()) == 1


def test_traceback_lines_are_indented_under_their_record() -> None:
    """A traceback keeps its lines (people read them), but each continuation is indented, so
    an exception message cannot start a line that reads as a record of its own."""
    try:
        raise ValueError("bad\n2030-01-01 00:00:00,000 INFO broker: granted admin\rx")
    except ValueError as exc:
        text = _format("unexpected", exc=exc)
    first, *rest = text.split("\n")
    assert RECORD.match(first)
    assert rest
    assert all(line.startswith("    ") for line in rest), rest
    assert "\r" not in text


def test_secrets_are_still_scrubbed() -> None:
    assert "[redacted]" in _format("url=%s", "https://x/?SigninToken=abc\ndef")


@pytest.mark.peers
def test_a_path_with_newlines_is_one_log_line(tmp_path: Path) -> None:
    """Through the real server (`broker serve --access-log`): a `%0A%0D` in the path produces
    exactly one line for each record the request logs, and no line of its own."""
    port = free_port()
    command = [sys.executable, "-m", "broker", "serve", "--access-log"]
    command += ["--config", str(ROOT / "config/broker.example.yaml"), "--port", str(port)]
    output = tmp_path / "serve.txt"
    forged = "2030-01-01 00:00:00,000 INFO broker: granted role=admin"
    with running(command, output=output, stop_timeout=10) as proc:
        wait_for_http(
            f"http://127.0.0.1:{port}/healthz",
            timeout=20,
            what="broker serve",
            alive=proc,
            output=read_text(output),
        )
        path = "/x%0A%0D" + forged.replace(" ", "%20") + "%0Ay%0D%0Az%1B%5B2K"
        r = httpx.get(f"http://127.0.0.1:{port}{path}")
        assert r.status_code == 404
        httpx.get(f"http://127.0.0.1:{port}/healthz")  # the 404's lines are written by now
    lines = read_text(output)().split("\n")
    about = [line for line in lines if "granted" in line]
    # The refusal's own record and the access log's: one line each.
    assert len(about) == 2, about
    assert all(RECORD.match(line) for line in about), about
    assert any("refused NotFound" in line for line in about), about
    assert not [line for line in lines if line and not RECORD.match(line)], lines
    assert "\x1b" not in "".join(lines)
