"""Session attribute templates: literal text and `{claim.path}` placeholders over the identity."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker import claims


class Unresolved(ValueError):
    """A placeholder whose claim is absent, empty or not a single scalar value."""


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    # (literal, claim path or None), in order: str.format's own grammar, `{{`/`}}` escapes.
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        """Raise ValueError for a template the broker could never render."""
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"bad template {text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if field is not None:
                if not field:
                    raise ValueError(f"bad template {text!r}: an empty {{}} names no claim")
                if spec or conversion:
                    raise ValueError(
                        f"bad template {text!r}: {{{field}}} takes no format spec or conversion"
                    )
                claims.check_path(field)
            parts.append((literal, field or None))
        return cls(text, tuple(parts))

    @property
    def literal(self) -> str:
        return "".join(lit for lit, _ in self.parts)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for _, p in self.parts if p is not None)

    def render(self, attributes: Mapping[str, Any]) -> str:
        out = []
        for literal, path in self.parts:
            out.append(literal)
            if path is not None:
                out.append(value_of(attributes, path))
        return "".join(out)


def value_of(attributes: Mapping[str, Any], path: str) -> str:
    """A claim as text. SAML attributes are lists, so a single value is taken as that value;
    several values, an object, null or an empty value cannot fill one placeholder."""
    found = claims.resolve(attributes, path)
    if found is None:
        raise Unresolved(f"the identity has no {path!r}")
    value = found.value
    if isinstance(value, list):
        if len(value) != 1:
            raise Unresolved(f"{path!r} has {len(value)} values, not one")
        value = value[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str) and str(value) != "":
        return str(value)
    raise Unresolved(f"{path!r} is empty or not a single value")
