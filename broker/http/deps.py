"""What an endpoint reads off the request: the runtime, the caller's address, a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from broker.errors import MissingToken
from broker.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a plain def dependency would hop to the thread pool on every request.
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer(request: Request, *, bare_allowed: bool = False) -> str:
    """The JWT from `Authorization: Bearer …`. The container-credentials contract sends the
    token file's content as the whole header value, so that route also takes it bare."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if bare_allowed and header and " " not in header:
        return header
    raise MissingToken(
        "Send the OIDC token as `Authorization: Bearer <jwt>`.",
        headers={"WWW-Authenticate": 'Bearer realm="broker"'},
    )


def request_path(request: Request) -> str:
    """This request's path and query, for coming back to it after a sign-in."""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")
