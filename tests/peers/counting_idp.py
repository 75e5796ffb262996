"""A minimal OIDC issuer on loopback that counts every request and can be told to fail.

It serves a discovery document and a JWKS for keys the test holds, so a test can sign tokens
and watch how often the broker comes back for keys (while the issuer is up, and while it is down).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/jwks"


class CountingIdp:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.failing = False  # answer 500 to everything
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with idp._lock:
                    idp.hits[self.path] += 1
                if idp.failing:
                    self._send(500, {"error": "down"})
                elif self.path == DISCOVERY:
                    self._send(200, {"issuer": idp.issuer, "jwks_uri": idp.issuer + JWKS})
                elif self.path == JWKS:
                    self._send(200, {"keys": idp.keys})
                else:
                    self._send(404, {})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @property
    def discovery_hits(self) -> int:
        return self.hits[DISCOVERY]

    @contextmanager
    def running(self) -> Iterator[CountingIdp]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
