"""Calls to an IdP (discovery, keys, the token endpoint), bounded whatever it sends: at most
`limit` bytes are read, within the IdP's timeout, and no redirect is followed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx


class TooLarge(Exception):
    """The answer passed the cap; the rest was not read."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def json_answer(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    seconds: float,
    limit: int,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """The status and the JSON object answered (None when the body is not one), all within
    `seconds`. httpx's errors and TimeoutError pass through, so each caller says which of its
    calls failed."""
    async with asyncio.timeout(seconds):
        async with http.stream(
            method, url, content=content, headers=headers, timeout=seconds, follow_redirects=False
        ) as response:
            raw = bytearray()
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > limit:
                    raise TooLarge(response.status_code)
            status = response.status_code
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        document = None
    return status, document if isinstance(document, dict) else None
