"""Start-and-wait for every server a test starts: one bounded wait that names what it waited for."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.types import ASGIApp

T = TypeVar("T")
#: What a wait watches: the process or thread that should become a server.
Watched = subprocess.Popen[Any] | threading.Thread

_TAIL = 4000


class NotReady(RuntimeError):
    """A server did not come up: it died, or it did not answer in time."""


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    alive: Watched | Sequence[Watched] | None = None,
    output: Callable[[], str] | None = None,
    interval: float = 0.02,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    Raises NotReady naming ``what`` after ``timeout`` seconds, or at once when the process or
    thread in ``alive`` has died: a server that crashed is not worth waiting for. ``output``
    adds what the server said (a log tail) to the error.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        watched: list[Watched] = []
        if isinstance(alive, threading.Thread | subprocess.Popen):
            watched = [alive]
        elif alive is not None:
            watched = list(alive)
        for w in watched:
            if not _is_alive(w):
                raise NotReady(f"{what}: {_death(w)} before it was ready{_said(output)}")
        if time.monotonic() >= deadline:
            raise NotReady(f"{what}: not ready after {timeout:g}s{_said(output)}")
        time.sleep(interval)


def _is_alive(watched: Watched) -> bool:
    if isinstance(watched, threading.Thread):
        return watched.is_alive()
    return watched.poll() is None


def _death(watched: Watched) -> str:
    if isinstance(watched, threading.Thread):
        return f"thread {watched.name} ended"
    return f"process exited with {watched.returncode}"


def _said(output: Callable[[], str] | None) -> str:
    if output is None:
        return ""
    text = output()
    return f"\n{text[-_TAIL:]}" if text else ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for servers that need one up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_answers(url: str) -> Callable[[], httpx.Response | None]:
    """A check for wait_until: the response once ``url`` answers at all, else None."""

    def check() -> httpx.Response | None:
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            return None

    return check


def wait_for_http(
    url: str,
    *,
    timeout: float,
    what: str,
    alive: Watched | None = None,
    output: Callable[[], str] | None = None,
) -> httpx.Response:
    """Wait until ``url`` answers (any status) and return its first answer."""
    return wait_until(
        http_answers(url), timeout=timeout, what=what, alive=alive, output=output, interval=0.05
    )


def read_text(path: Path) -> Callable[[], str]:
    """What a process wrote to ``path`` so far (empty before it wrote anything)."""

    def read() -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    return read


def wait_for_output(
    path: Path, text: str, *, timeout: float, what: str, alive: Watched | None = None
) -> str:
    """Wait until the output file at ``path`` contains ``text``; return the whole output."""
    read = read_text(path)

    def check() -> str:
        said = read()
        return said if text in said else ""

    return wait_until(check, timeout=timeout, what=what, alive=alive, output=read, interval=0.1)


@contextmanager
def running(
    args: list[str], *, output: Path, stop_timeout: float = 15, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process with stdout and stderr going to ``output`` (a file, so nothing can
    block on a full pipe); terminate it on the way out, kill it if it will not stop."""
    with output.open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, **popen)
        try:
            yield proc
        finally:
            stop(proc, stop_timeout)


def stop(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Terminate ``proc`` and reap it; kill it if it outlives ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serve_app(
    app: ASGIApp,
    *,
    timeout: float = 10,
    tls: tuple[Path, Path] | None = None,
    port: int = 0,
) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on loopback; yield its base URL. `tls`:
    (certificate chain, key) files to serve https; `port`: a fixed one (0: any free one)."""
    certfile, keyfile = tls if tls is not None else (None, None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            access_log=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=timeout, what="uvicorn", alive=thread)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
