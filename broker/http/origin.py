"""Who started a request: Fetch Metadata and Origin, for routes that mint credentials or
change state (OWASP CSRF cheat sheet, "Fetch Metadata headers" and "verifying origin")."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(base_url: str) -> str:
    """RFC 6454 §6.2: the ASCII serialization a browser sends in `Origin`."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def from_another_site(request: Request, origin: str) -> bool:
    """Fetch Metadata §2.1 (Sec-Fetch-Site): `cross-site` and `same-site` (a sibling host)
    were started by another site; `same-origin` by our own pages; `none` by the person
    (typed, bookmarked). A browser that sends no Sec-Fetch-Site still sends Origin on a
    form POST: another origin there is another site too. `Origin: null` decides nothing:
    our pages send Referrer-Policy: no-referrer, under which a browser posts our own forms
    with `Origin: null` (Fetch, "serializing a request origin")."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return True
    sent = request.headers.get("origin")
    return sent is not None and sent != "null" and sent.lower() != origin
