"""The picker's Favourites and Recent lists, and the star that adds a role to the first.

Only roles the rules grant now are listed or starred: a remembered role that is no longer
granted is left out without a word, and starring never grants anything (the console and
command-line routes still ask the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from broker.browser.confirm import confirm
from broker.browser.console import FRONT_DOOR, NO_REFERRER, SignedIn
from broker.browser.memory import Picks
from broker.browser.pages import AccountGroup
from broker.errors import InvalidParameter
from broker.http.deps import RuntimeDep, client_address
from broker.http.origin import from_another_site
from broker.http.readers import read_form
from broker.identity import RoleGrant

_STAR = {"on": True, "off": False}


@dataclass(frozen=True, slots=True)
class Shortcut:
    """One row of the Favourites or Recent list: the role as the accounts list shows it."""

    account: AccountGroup
    role: dict[str, str]


@dataclass(frozen=True, slots=True)
class Shortcuts:
    favourites: list[Shortcut]
    recent: list[Shortcut]
    starred: frozenset[str]  # ARNs, for the star on every row
    last: str  # ARN of the most recent role, "" if none


def shortcuts(groups: Sequence[AccountGroup], picks: Picks) -> Shortcuts:
    """Favourites in the accounts list's order, recent roles newest first; only granted ones."""
    rows = {r["arn"]: Shortcut(g, r) for g in groups for r in g.roles}
    starred = frozenset(a for a in picks.favourites if a in rows)
    recent = [rows[a] for a in picks.recent if a in rows]
    return Shortcuts(
        favourites=[row for arn, row in rows.items() if arn in starred],
        recent=recent,
        starred=starred,
        last=recent[0].role["arn"] if recent else "",
    )


class FavouriteRoutes:
    def __init__(self, door: SignedIn) -> None:
        self._door = door

    def add_to(self, router: APIRouter) -> None:
        router.add_api_route("/favourites", self.star, methods=["POST"])

    async def star(self, request: Request, rt: RuntimeDep) -> Response:
        """`role` (ARN or name) and `star` (`on` or `off`, so a repeated post changes
        nothing). A form post goes back to the picker; a script asking for JSON gets the
        new state."""
        form = await read_form(request, what="the form", empty_ok=True)
        role, star = form.get("role") or "", form.get("star")
        if from_another_site(request, self._door.origin):
            session = await self._door.session(request)
            verb = "Remove {} from" if star == "off" else "Add {} to"
            return confirm(
                session,
                "/favourites",
                {"role": role, "star": star},
                title="Change your favourites?",
                question=verb.format(role or "?") + " your favourite roles?",
                button="Remove" if star == "off" else "Add",
            )
        async with rt.audit.decision("favourite", FRONT_DOOR, client_address(request)) as t:
            session = await self._door.session(request)
            t.identity(session.identity)
            session.check_csrf(form.get("csrf"))
            on = _star(star)
            if not role:
                raise InvalidParameter("Choose a role.")
            grant = rt.exchange.grant(session.identity, role, t)
            granted = {g.arn for g in rt.exchange.decide(session.identity).grants}
            await self._door.memory.star(session.identity, grant.arn, on, granted)
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/html" not in accept:
            return JSONResponse(_state(grant, on), headers=NO_REFERRER)
        return RedirectResponse(_back(form), status_code=303, headers=NO_REFERRER)


def _star(value: str | None) -> bool:
    if value not in _STAR:
        raise InvalidParameter("`star` must be on or off.")
    return _STAR[value]


def _state(grant: RoleGrant, on: bool) -> dict[str, object]:
    return {"role": grant.name, "arn": grant.arn, "favourite": on}


def _back(form: dict[str, str]) -> str:
    """The picker as it was shown (a deep link's destination and Region kept)."""
    query = {k: form[k] for k in ("destination", "region") if form.get(k)}
    return "/" + ("?" + urlencode(query) if query else "")
