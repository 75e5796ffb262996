"""Run an ASGI app with uvicorn in a background thread (the stand-in, or a test's peer)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


def make_server(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    # No access log: query strings on /federation carry credentials and sign-in tokens.
    config = uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level="warning", ws="none", lifespan="on"
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run any ASGI app with uvicorn in a background thread; yields its base URL.
    (Tests use it for peers too, e.g. an OIDC issuer's discovery and JWKS documents.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = make_server(app, host, bound_port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="asgi-standin"
    )
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server failed to start")
            time.sleep(0.005)
        yield (
            f"http://[{host}]:{bound_port}"
            if family == socket.AF_INET6
            else f"http://{host}:{bound_port}"
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
