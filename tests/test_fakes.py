"""The one start-and-wait helper: bounded, names what it waited for, gives up on a dead server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fakes.servers import NotReady, wait_for_output, wait_until


def test_returns_the_first_truthy_answer() -> None:
    answers = iter([None, "", "ready"])
    assert wait_until(lambda: next(answers), timeout=5, what="x", interval=0) == "ready"


def test_times_out_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(NotReady, match=r"^the widget: not ready after 0\.2s$"):
        wait_until(lambda: False, timeout=0.2, what="the widget")
    assert time.monotonic() - started < 5


def test_a_dead_process_fails_at_once_with_its_output(tmp_path: Path) -> None:
    log = tmp_path / "out.txt"
    log.write_text("boom: no config\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(30)
    started = time.monotonic()
    with pytest.raises(NotReady) as caught:
        wait_until(lambda: False, timeout=60, what="the server", alive=proc, output=log.read_text)
    assert time.monotonic() - started < 5, "no waiting for a process that has exited"
    assert (
        str(caught.value)
        == "the server: process exited with 3 before it was ready\nboom: no config\n"
    )


def test_a_dead_thread_fails_at_once() -> None:
    thread = threading.Thread(target=lambda: None, name="worker")
    thread.start()
    thread.join()
    with pytest.raises(NotReady, match=r"^the app: thread worker ended before it was ready$"):
        wait_until(lambda: False, timeout=60, what="the app", alive=thread)


def test_output_file_appears_late(tmp_path: Path) -> None:
    log = tmp_path / "later.txt"
    timer = threading.Timer(0.1, lambda: log.write_text("starting\nlistening on 1234\n"))
    timer.start()
    try:
        said = wait_for_output(log, "listening", timeout=10, what="the server")
    finally:
        timer.cancel()
    assert said.endswith("listening on 1234\n")
