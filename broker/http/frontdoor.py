"""How front doors plug in: routes plus startup, and the two hand-offs between them (a sign-in
method the browser can send people to, and the browser taking a verified identity)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import APIRouter, Request, Response

from broker.audit import Trail
from broker.identity import Identity
from broker.runtime import Runtime


class FrontDoor(Protocol):
    """A protocol's or a surface's routes. `start` runs once in the app's lifespan, after the
    shared runtime is open (load metadata, keys, sessions)."""

    def router(self) -> APIRouter: ...

    async def start(self, rt: Runtime) -> None: ...


@dataclass(frozen=True, slots=True)
class SignInMethod:
    """One way to sign a person in, offered by a front door that can start a sign-in."""

    idp: str  # the configured identity provider's name
    label: str
    # The broker path that starts a sign-in (or a re-authentication) and comes back to `next`.
    start_url: Callable[[str], str]


class Landing(Protocol):
    """Where a front door hands a person once their identity is verified: the browser
    session and role picker. `target` is a path on the broker, already checked.
    `ask_first`: another site's link chose `target` (it started the sign-in), so a console
    there asks before it opens; otherwise the redirect to it is trusted once, though it
    follows the IdP's cross-site POST."""

    async def sign_in(
        self,
        request: Request,
        identity: Identity,
        target: str,
        trail: Trail,
        *,
        ask_first: bool = False,
    ) -> Response: ...
