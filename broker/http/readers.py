"""Reading what callers send: options from query, JSON or form; forms; durations; `next` paths."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from broker.aws.arn import MAX_SESSION_SECONDS, MIN_SESSION_SECONDS
from broker.errors import InvalidParameter, MalformedRequest

FORMATS = ("json", "process", "env")
_FORM = "application/x-www-form-urlencoded"


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def request_options(
    request: Request, keys: tuple[str, ...] = ("role", "duration_seconds", "format")
) -> dict[str, str]:
    """Options from the query string, overridden by a JSON or form body if one is sent."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = _content_type(request)
    body = await request.body()
    if body.strip():
        if ctype == "application/json":
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise MalformedRequest("The request body is not valid JSON.") from None
            if not isinstance(data, dict):
                raise MalformedRequest("The request body must be a JSON object.")
            params.update(data)
        elif ctype == _FORM:
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            raise MalformedRequest("Send options as JSON or form data, or in the query string.")
    out: dict[str, str] = {}
    for key in keys:
        value = params.get(key)
        if value is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidParameter(f"{key} must be a string.")
        out[key] = str(value)
    return out


async def read_form(request: Request, *, what: str, empty_ok: bool = False) -> dict[str, str]:
    """An HTML form post. `empty_ok`: a bodyless POST reads as no fields (a CSRF check then
    refuses it) instead of a malformed request."""
    ctype = _content_type(request)
    if not ctype and empty_ok:
        return {}
    if ctype != _FORM:
        raise MalformedRequest(f"Send {what} as an HTML form post.")
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def response_format(params: dict[str, str]) -> str:
    fmt = params.get("format") or "json"
    if fmt not in FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}.")
    return fmt


def parse_duration(raw: str | int | None) -> int | None:
    """STS DurationSeconds: a whole number from 900 to 43200 (the role's maximum applies later)."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidParameter("duration_seconds must be a whole number of seconds.") from None
    if not MIN_SESSION_SECONDS <= value <= MAX_SESSION_SECONDS:
        raise InvalidParameter("duration_seconds must be between 900 and 43200.")
    return value


def safe_next(value: str | None) -> str:
    """RelayState/next may only name a path on the broker: no scheme, no host, no `//`."""
    if not value:
        return "/"
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or c == "\x7f" for c in value)
        or len(value) > 2048
    ):
        raise InvalidParameter("next must be a path on this site.")
    return value
