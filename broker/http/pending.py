"""Sign-ins a browser started and has not finished, kept in that browser: one cookie holding a
few rows, newest first, each good for PENDING_SECONDS. An anonymous start stores nothing on
the server. Each front door says what a row holds, how the value is protected (signed or
sealed), and which SameSite rule lets its IdP's answer carry the cookie back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from fastapi import Request, Response

#: How long a sign-in may wait at the IdP (people read, type, and use a second factor).
PENDING_SECONDS = 600
#: A few sign-ins at once (tabs); browsers keep at least 4096 bytes a cookie (RFC 6265 §6.1).
MAX_PENDING = 4
MAX_COOKIE_BYTES = 3800


class Started(Protocol):
    @property
    def started(self) -> float: ...  # epoch seconds


T = TypeVar("T", bound=Started)


class PendingCookie(ABC, Generic[T]):
    """The cookie's codec and attributes. Expired, altered or malformed values read as no
    pending sign-in."""

    def __init__(self, name: str, *, secure: bool, samesite: Literal["lax", "none"] | None) -> None:
        self._secure = secure
        self._samesite: Literal["lax", "none"] | None = samesite
        # RFC 6265bis §4.1.3.2: a `__Host-` cookie is Secure, Path=/ and has no Domain, so no
        # other host (a sibling subdomain) can plant or overwrite it. Plain http (loopback
        # only: config refuses http elsewhere) cannot set a Secure cookie, hence no prefix.
        self.cookie = "__Host-" + name if secure else name

    @abstractmethod
    def _protect(self, rows: list[list[Any]]) -> str:
        """The rows as the cookie's value, signed or sealed."""

    @abstractmethod
    def _open(self, value: str) -> object:
        """The rows a value holds; ValueError for one this broker did not make."""

    @abstractmethod
    def _row(self, item: T) -> list[Any]: ...

    @abstractmethod
    def _parse(self, row: object) -> T | None:
        """One row, or None when it is not one."""

    def read(self, request: Request, now: float) -> tuple[T, ...]:
        return self.loads(request.cookies.get(self.cookie), now)

    def loads(self, value: str | None, now: float) -> tuple[T, ...]:
        if not value or len(value) > MAX_COOKIE_BYTES:
            return ()
        try:
            rows = self._open(value)
        except ValueError:
            return ()
        if not isinstance(rows, list):
            return ()
        parsed = (self._parse(row) for row in rows[:MAX_PENDING])
        return tuple(p for p in parsed if p is not None and 0 <= now - p.started < PENDING_SECONDS)

    def dumps(self, items: Sequence[T]) -> str:
        return self._protect([self._row(p) for p in items])

    def add(self, items: Sequence[T], new: T) -> tuple[T, ...]:
        """`new` first; the oldest go when there are too many or the cookie grows too big."""
        kept = [new, *items][:MAX_PENDING]
        while len(kept) > 1 and len(self.dumps(kept)) > MAX_COOKIE_BYTES:
            kept.pop()
        return tuple(kept)

    def write(self, response: Response, items: Sequence[T]) -> None:
        if not items:
            self.clear(response)
            return
        response.set_cookie(
            self.cookie,
            self.dumps(items),
            max_age=PENDING_SECONDS,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite=self._samesite,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie, path="/", secure=self._secure, httponly=True, samesite=self._samesite
        )
