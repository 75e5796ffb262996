"""Refusals as the client sees them: RFC 9457 problem details, or an error page for a browser."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from broker.errors import (
    BrokerError,
    CsrfFailed,
    FavouritesFull,
    InvalidParameter,
    MalformedRequest,
    MethodNotAllowed,
    NoRoleGranted,
    NotFound,
    RedirectNotAllowed,
    ReplayDetected,
    RoleNotGranted,
    RoleSelectionRequired,
    SessionExpired,
    StsAccessDenied,
    UnknownInResponseTo,
    UpstreamError,
    new_error_id,
)
from broker.http.readers import safe_next
from broker.http.render import NO_STORE, page

log = logging.getLogger("broker")
#: Refusals a new sign-in cures: the session ended, the browser replayed a sign-in (back
#: button), or the answer is to a sign-in this browser did not start (or started too long ago).
RESTARTABLE = (SessionExpired, ReplayDetected, UnknownInResponseTo)
SIGN_IN_AGAIN = "sign_in_again"


@contextmanager
def sign_in_again(url: str) -> Iterator[None]:
    """A restartable refusal raised inside offers `url` (a path on the broker that starts a
    sign-in coming back to the same `next`): a link on the error page, a member of the
    problem document."""
    try:
        yield
    except RESTARTABLE as exc:
        exc.extra.setdefault(SIGN_IN_AGAIN, url)
        raise


def _restart_url(exc: BrokerError) -> str | None:
    """Only a path on this site (the same rule as `next`): never an open redirect."""
    url = exc.extra.get(SIGN_IN_AGAIN)
    if not isinstance(url, str):
        return None
    try:
        return safe_next(url)
    except InvalidParameter:
        return None


ACCOUNTS = ("Back to your accounts", "/")
#: What a person can do next, by refusal (the first class that matches): a sentence, and the
#: button that does it where there is one. A refusal a new sign-in cures offers that instead.
NEXT_STEPS: tuple[tuple[type[BrokerError], str, tuple[str, str] | None], ...] = (
    (NoRoleGranted, "Ask your administrator for access to an AWS role, then sign in again.", None),
    (RoleNotGranted, "Choose one of the roles you have.", ACCOUNTS),
    (
        StsAccessDenied,
        "AWS refused this role: choose another, or ask your administrator.",
        ACCOUNTS,
    ),
    (RoleSelectionRequired, "Choose a role.", ACCOUNTS),
    (
        CsrfFailed,
        "The form was older than your sign-in: open your accounts and try again.",
        ACCOUNTS,
    ),
    (RedirectNotAllowed, "That link leads outside the AWS console: open a role here.", ACCOUNTS),
    (NotFound, "Nothing is at this address.", ACCOUNTS),
    (FavouritesFull, "Unstar a role you no longer use, then star this one.", ACCOUNTS),
    (InvalidParameter, "Open your accounts and choose again.", ACCOUNTS),
    (UpstreamError, "This is usually brief: try again in a minute.", ACCOUNTS),
)


def next_step(exc: BrokerError) -> tuple[str, tuple[str, str] | None]:
    for kind, sentence, button in NEXT_STEPS:
        if isinstance(exc, kind):
            return sentence, button
    return "", None


def wants_html(scope: Scope) -> bool:
    if scope["path"].startswith("/v1/"):
        return False
    accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
    return "text/html" in accept


def problem(exc: BrokerError, scope: Scope) -> Response:
    """RFC 9457 problem details (or an error page for a browser); never a stack trace."""
    error_id = exc.error_id or new_error_id()
    exc.error_id = error_id
    level = logging.ERROR if exc.status >= 500 else logging.INFO
    log.log(
        level,
        "refused %s status=%d error_id=%s path=%s detail=%s%s",
        exc.code,
        exc.status,
        error_id,
        scope.get("path"),
        exc.detail,
        f" log_detail={exc.log_detail}" if exc.log_detail else "",
    )
    headers = {**NO_STORE, **exc.headers}
    restart = _restart_url(exc)
    if wants_html(scope):
        step, button = ("", None) if restart else next_step(exc)
        return page(
            "error.html",
            status=exc.status,
            headers=headers,
            title=exc.title,
            detail=exc.detail,
            code=exc.code,
            error_id=error_id,
            sign_in_again=restart,
            next_step=step,
            button=button,
        )
    body = {
        "type": f"urn:broker:error:{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
        "error_id": error_id,
        **{k: v for k, v in exc.extra.items() if k != SIGN_IN_AGAIN},
        **({SIGN_IN_AGAIN: restart} if restart else {}),
    }
    return JSONResponse(
        body, status_code=exc.status, headers=headers, media_type="application/problem+json"
    )


async def _broker_error(request: Request, exc: BrokerError) -> Response:
    return problem(exc, request.scope)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's default echoes the input, which may be a token: name the field only.
    fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
    return problem(
        InvalidParameter(f"Invalid parameter(s): {', '.join(fields) or 'request'}."), request.scope
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    err: BrokerError
    if exc.status_code == 404:
        err = NotFound("There is nothing at this address.")
    elif exc.status_code == 405:
        err = MethodNotAllowed("This address does not take that method.", headers=exc.headers)
    else:
        err = MalformedRequest("The request could not be understood.", headers=exc.headers)
    return problem(err, request.scope)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):  # the caller went away; nobody to answer
        log.info("client disconnected path=%s", request.url.path)
        return Response(status_code=400)
    error_id = new_error_id()
    log.error(
        "unexpected %s error_id=%s path=%s",
        type(exc).__name__,
        error_id,
        request.url.path,
        exc_info=exc,
    )
    err = BrokerError("The broker hit an unexpected error; it has been logged.")
    err.error_id = error_id
    return problem(err, request.scope)


def install(app: FastAPI) -> None:
    """One handler per kind of failure; none of them ever shows a stack trace."""
    app.add_exception_handler(BrokerError, _broker_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
