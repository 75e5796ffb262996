"""Validation errors as the operator reads them: their own key paths, one line each."""

from __future__ import annotations

from pydantic import ValidationError

# Segments pydantic adds for union members: not keys anyone wrote.
_UNION_PARTS = frozenset({"str", "GrantTemplate"})


def _user_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, p in enumerate(loc):
        text = str(p)
        if text in _UNION_PARTS or text.startswith(("function-", "tagged-union")):
            continue
        # identity_providers.<name>.<type tag>: the tag is the discriminator, not a key.
        if i == 2 and loc[0] == "identity_providers" and text in ("oidc", "saml"):
            continue
        parts.append(text)
    return ".".join(parts)


def format_errors(exc: ValidationError) -> str:
    errors = exc.errors()
    # For `str | GrantTemplate`, a mapping fails the str branch too: keep the useful error.
    detailed = {_user_path(e["loc"]) for e in errors if e["loc"][-1:] != ("str",)}
    lines: list[str] = []
    for err in errors:
        loc = _user_path(err["loc"])
        if err["loc"][-1:] == ("str",) and any(p.startswith(loc) for p in detailed):
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        line = f"  {loc or '(top level)'}: {msg}"
        if line not in lines:
            lines.append(line)
    return "invalid configuration:\n" + "\n".join(lines)
