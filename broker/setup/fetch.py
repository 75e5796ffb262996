"""HTTPS GETs for the setup helper: bounded time and size, no silent redirect to another origin."""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from broker.setup import SetupError

MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 3


class FetchError(SetupError):
    pass


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify against the system store, or only against `ca_file` when given (tests, private CAs)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def get(
    url: str, *, timeout: float, ca_file: str | None = None, max_bytes: int = MAX_BYTES
) -> bytes:
    """GET `url` over https; follow a redirect only within the same origin, and say so otherwise."""
    if urlsplit(url).scheme != "https":
        raise FetchError(f"{url}: only https URLs are fetched")
    # trust_env=False: the chain probe connects directly, so the document fetch does too.
    with httpx.Client(
        verify=tls_context(ca_file), timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", url, headers={"Accept": "application/json, */*"}) as resp:
                    if resp.is_redirect:
                        target = urljoin(url, resp.headers.get("location", ""))
                        if _origin(target) != _origin(url):
                            raise FetchError(
                                f"{url} redirects to {target}, another host; not followed. "
                                "Check which URL is right and use it directly."
                            )
                        url = target
                        continue
                    if resp.status_code != 200:
                        raise FetchError(f"{url}: HTTP {resp.status_code}")
                    body = bytearray()
                    for chunk in resp.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchError(f"{url}: response larger than {max_bytes} bytes")
                    return bytes(body)
            except httpx.TimeoutException:
                raise FetchError(f"{url}: timed out after {timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {_reason(exc)}") from None
    raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")


def get_json(url: str, *, timeout: float, ca_file: str | None = None) -> dict[str, Any]:
    body = get(url, timeout=timeout, ca_file=ca_file)
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FetchError(f"{url}: not JSON") from None
    if not isinstance(doc, dict):
        raise FetchError(f"{url}: expected a JSON object")
    return doc


def _reason(exc: httpx.HTTPError) -> str:
    # The innermost cause names the real problem (certificate, refused connection...).
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate not trusted ({cause.verify_message}); pass --ca-file for a private CA"
        )
    return str(cause) or type(cause).__name__
