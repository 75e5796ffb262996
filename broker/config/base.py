"""What every config model shares: strictness (unknown keys refused) and URL rules."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_path: bool = True) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise ValueError(f"{what} must use https (plain http is allowed only on loopback)")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not have a query or fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise ValueError(f"{what} must not have a path")
    return url
