"""Who started a request (Sec-Fetch-Site, Origin), and the "sign in again" link's own rule."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from broker.errors import SessionExpired
from broker.http.origin import from_another_site, origin_of
from broker.http.problems import problem


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("https://Broker.Example.com", "https://broker.example.com"),
        ("https://broker.example.com:443", "https://broker.example.com"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origin_is_what_a_browser_sends(base_url: str, origin: str) -> None:
    """RFC 6454 §6.2: lower-case host, no default port."""
    assert origin_of(base_url) == origin


def _request(**headers: str) -> Request:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "foreign"),
    [
        ({"sec_fetch_site": "cross-site"}, True),
        ({"sec_fetch_site": "same-site"}, True),
        ({"origin": "https://evil.example"}, True),
        ({"sec_fetch_site": "same-origin", "origin": "https://evil.example"}, True),
        ({"sec_fetch_site": "same-origin"}, False),
        ({"sec_fetch_site": "none"}, False),
        ({"origin": "null"}, False),
        ({"origin": "HTTPS://BROKER.EXAMPLE.COM"}, False),
        ({}, False),
    ],
)
def test_from_another_site(headers: dict[str, str], foreign: bool) -> None:
    assert from_another_site(_request(**headers), "https://broker.example.com") is foreign


@pytest.mark.parametrize("url", ["https://evil.example/", "//evil.example/", "/\\evil", 7])
def test_sign_in_again_is_only_ever_a_path_here(url: object) -> None:
    exc = SessionExpired("Sign in again.", extra={"sign_in_again": url})
    scope = {"type": "http", "path": "/console", "headers": [(b"accept", b"text/html")]}
    page = problem(exc, scope)
    assert b"sign-in-again" not in page.body
    scope["headers"] = [(b"accept", b"application/json")]
    assert b"sign_in_again" not in problem(exc, scope).body
