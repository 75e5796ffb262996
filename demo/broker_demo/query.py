"""AWS's Query protocol as STS speaks it: form parameters in, AWS-style validation messages,
XML responses and `<ErrorResponse>` documents out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from broker_demo.state import NAMESPACE, StsFault

MAX_BODY_BYTES = 256 * 1024
MAX_FIELDS = 200

# An XML element: its name and either text or child elements.
Node: TypeAlias = tuple[str, "str | list[Node]"]


async def read_params(request: Request) -> dict[str, str]:
    """Query-string and form-encoded body parameters (both are valid for the Query API),
    bounded; a repeated parameter keeps its first value."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise StsFault("ValidationError", "The request body is too large", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise StsFault("ValidationError", "The request body is too large", 413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StsFault(
            "MalformedQueryString", "The request body is not a valid query string"
        ) from exc
    params: dict[str, str] = {}
    for key, value in [*request.query_params.multi_items(), *pairs]:
        params.setdefault(key, value)
    return params


@dataclass(slots=True)
class Constraints:
    """Collects AWS-style "N validation errors detected" findings, then raises them at once.
    `echo=False` keeps a value (a token, an assertion, a policy) out of the message."""

    errors: list[str] = field(default_factory=list)

    def _fail(self, member: str, value: str | None, echo: bool, rule: str) -> None:
        shown = f"Value '{value}'" if echo else "Value"
        self.errors.append(
            f"{shown} at '{member}' failed to satisfy constraint: Member must {rule}"
        )

    def length(
        self, member: str, value: str | None, low: int, high: int, *, echo: bool = True
    ) -> str:
        if value is None:
            self.errors.append(
                f"Value null at '{member}' failed to satisfy constraint: Member must not be null"
            )
            return ""
        if len(value) < low:
            self._fail(member, value, echo, f"have length greater than or equal to {low}")
        elif len(value) > high:
            self._fail(member, value, echo, f"have length less than or equal to {high}")
        return value

    def pattern(
        self, member: str, value: str, regex: re.Pattern[str], *, echo: bool = True
    ) -> None:
        if value and not regex.fullmatch(value):
            self._fail(member, value, echo, f"satisfy regular expression pattern: {regex.pattern}")

    def integer(self, member: str, value: str | None, low: int, high: int, default: int) -> int:
        if value is None:
            return default
        if not re.fullmatch(r"-?\d{1,10}", value):
            self._fail(member, value, True, "be an integer")
        elif int(value) < low:
            self._fail(member, value, True, f"have value greater than or equal to {low}")
        elif int(value) > high:
            self._fail(member, value, True, f"have value less than or equal to {high}")
        else:
            return int(value)
        return default

    def count(self, member: str, items: tuple[str, ...], high: int) -> None:
        if len(items) > high:
            self._fail(member, None, False, f"have length less than or equal to {high}")

    def raise_if_any(self) -> None:
        if self.errors:
            count = len(self.errors)
            noun = "error" if count == 1 else "errors"
            message = f"{count} validation {noun} detected: " + "; ".join(self.errors)
            raise StsFault("ValidationError", message)


def _render(nodes: list[Node]) -> str:
    out = []
    for name, value in nodes:
        inner = _escape(value) if isinstance(value, str) else _render(value)
        out.append(f"<{name}>{inner}</{name}>")
    return "".join(out)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _xml(body: str, status: int, request_id: str) -> Response:
    # Set by hand: Starlette would append "; charset=utf-8" to a text/* media type.
    headers = {"content-type": "text/xml", "x-amzn-RequestId": request_id}
    return Response(content=body, status_code=status, headers=headers)


def success(action: str, result: list[Node], request_id: str) -> Response:
    """`<{action}Response><{action}Result>…</…><ResponseMetadata><RequestId>…`"""
    body = (
        f'<{action}Response xmlns="{NAMESPACE}">'
        f"{_render([(f'{action}Result', result), ('ResponseMetadata', [('RequestId', request_id)])])}"
        f"</{action}Response>"
    )
    return _xml(body, 200, request_id)


def error(fault: StsFault, request_id: str) -> Response:
    """`<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`"""
    detail: list[Node] = [
        ("Type", fault.fault_type),
        ("Code", fault.code),
        ("Message", fault.message),
    ]
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}">'
        f"{_render([('Error', detail), ('RequestId', request_id)])}"
        "</ErrorResponse>"
    )
    return _xml(body, fault.status, request_id)
