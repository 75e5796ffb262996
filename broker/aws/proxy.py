"""Outbound proxies as the environment names them: HTTPS_PROXY, HTTP_PROXY, NO_PROXY, CONNECT."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
import urllib.request
from urllib.parse import urlsplit


class Tunnel(asyncio.Protocol):
    """Reads a proxy's answer to CONNECT; the connection is then handed to TLS."""

    def __init__(self) -> None:
        self.established: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > 16384:
            self._settle(OSError("the proxy's answer to CONNECT is too long"))
        elif b"\r\n\r\n" in self._buffer:
            status_line = self._buffer.split(b"\r\n", 1)[0].split()
            ok = len(status_line) >= 2 and status_line[1] == b"200"
            self._settle(None if ok else OSError("the proxy refused CONNECT"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(OSError("the proxy closed the connection"))

    def _settle(self, exc: Exception | None) -> None:
        if self.established.done():
            return
        if exc is None:
            self.established.set_result(None)
        else:
            self.established.set_exception(exc)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY / HTTP_PROXY, NO_PROXY), as
    curl, requests and the AWS SDKs read them."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or _bypassed(parts.hostname or "", parts.port, proxies.get("no", "")):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    return proxy


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """NO_PROXY: `*`, or comma-separated hosts or domains (a leading dot optional), each
    optionally with a port; a domain covers its subdomains."""
    host = host.lower().rstrip(".")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").rstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_authorization(proxy: str) -> str:
    parts = urlsplit(proxy)
    if parts.username is None:
        return ""
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Proxy-Authorization: Basic {token}\r\n"
