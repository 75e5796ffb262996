"""How a rule reads a claim: paths into nested claims, and values compared as issuers send them.

Paths. A claim path names a value in the claims (or SAML attributes) in one of two forms:

- dotted, `kubernetes.io.namespace`: the path is split into keys that exist, walking nested
  objects. At each level the longest existing key is tried first (so the top-level key
  `kubernetes.io` is found, and SAML attribute names full of dots stay whole), and shorter
  ones if that walk leads nowhere.
- a JSON Pointer (RFC 6901), `/kubernetes.io/namespace`: exactly these keys, with `~1` for
  `/` and `~0` for `~`; a number steps into an array. For when a dotted path is ambiguous.

Values. Issuers send the same fact in different JSON types (GitHub and GitLab send
`"true"`, Google sends `true`; GitHub sends ids as strings, YAML reads `123` as a number), so:

- a boolean equals the same boolean or its JSON spelling, the string "true" or "false";
- a number equals a number or a numeric string of the same value (JSON number syntax only:
  "1.0" equals 1, "007" and "0x1" are not numbers); a boolean is never a number;
- two strings compare as strings (`case_sensitive: false` folds case), except that two
  UUIDs compare case-insensitively, as RFC 9562 §4 says they are;
- null, objects and lists-inside-lists equal nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Key = str | int
# RFC 8259 §6: the JSON number grammar, and nothing Python's float() also takes ("1_0", " 1").
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)
_INDEX = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_MAX_NUMBER_CHARS = 400


@dataclass(frozen=True, slots=True)
class Found:
    value: Any
    keys: tuple[Key, ...]  # what the path walked, outermost first


def is_pointer(path: str) -> bool:
    return path.startswith("/")


def parse_pointer(path: str) -> tuple[str, ...]:
    """RFC 6901 §3-4: split on "/", then ~1 → "/" and ~0 → "~"; any other "~" is an error."""
    tokens = path.split("/")[1:]
    for t in tokens:
        if re.search(r"~(?![01])", t):
            raise ValueError(f"{path!r} is not a JSON Pointer: '~' must be followed by 0 or 1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def check_path(path: str) -> None:
    """Raise ValueError for a path that can never be read (a malformed JSON Pointer)."""
    if is_pointer(path):
        parse_pointer(path)


def resolve(claims: Mapping[str, Any], path: str) -> Found | None:
    """The value at `path`, and the keys that reached it; None when the path does not resolve."""
    if is_pointer(path):
        return _pointer(claims, parse_pointer(path))
    return _dotted(claims, path, (), set())


def walked(claims: Mapping[str, Any], path: str) -> tuple[Key, ...]:
    """The longest walk a path makes into the claims before it stops (for explanations)."""
    if is_pointer(path):
        node: Any = claims
        done: list[Key] = []
        for token in parse_pointer(path):
            step = _step(node, token)
            if step is None:
                break
            done.append(step[0])
            node = step[1]
        return tuple(done)
    best: tuple[Key, ...] = ()
    node = claims
    rest = path
    while isinstance(node, Mapping) and rest:
        for cut in _cuts(rest):
            key = rest[:cut]
            if key in node:
                best = (*best, key)
                node, rest = node[key], rest[cut + 1 :]
                break
        else:
            break
    return best


def show_keys(keys: Sequence[Key]) -> str:
    """`["kubernetes.io"]["namespace"]`: unambiguous, whatever the keys contain."""
    return "".join(f"[{k}]" if isinstance(k, int) else f'["{k}"]' for k in keys)


def _cuts(path: str) -> list[int]:
    """Where a dotted path may end its first key: the whole path first, then each dot from the right."""
    return [len(path), *(i for i in range(len(path) - 1, -1, -1) if path[i] == ".")]


def _dotted(
    node: Mapping[str, Any], path: str, keys: tuple[Key, ...], dead: set[tuple[int, int]]
) -> Found | None:
    # `dead` remembers (object, rest-of-path) pairs that led nowhere, so a claims document
    # built to match many splits costs a walk per split point, not per combination.
    if (id(node), len(path)) in dead:
        return None
    for cut in _cuts(path):
        key = path[:cut]
        if key not in node:
            continue
        value = node[key]
        if cut == len(path):
            return Found(value, (*keys, key))
        if isinstance(value, Mapping):
            found = _dotted(value, path[cut + 1 :], (*keys, key), dead)
            if found is not None:
                return found
    dead.add((id(node), len(path)))
    return None


def _pointer(claims: Mapping[str, Any], tokens: tuple[str, ...]) -> Found | None:
    node: Any = claims
    keys: list[Key] = []
    for token in tokens:
        step = _step(node, token)
        if step is None:
            return None
        keys.append(step[0])
        node = step[1]
    return Found(node, tuple(keys))


def _step(node: Any, token: str) -> tuple[Key, Any] | None:
    if isinstance(node, Mapping):
        return (token, node[token]) if token in node else None
    # RFC 6901 §4: an array index is digits without a leading zero; "-" is past the end.
    if isinstance(node, list) and _INDEX.fullmatch(token) and int(token) < len(node):
        return int(token), node[int(token)]
    return None


def same(claim: Any, wanted: Any, *, case_sensitive: bool = True) -> bool:
    """Whether a claim value equals a rule's value, by the rules in this module's docstring."""
    if isinstance(claim, bool) or isinstance(wanted, bool):
        return _as_bool(claim) is not None and _as_bool(claim) == _as_bool(wanted)
    if _is_number(claim) or _is_number(wanted):
        a, b = _as_number(claim), _as_number(wanted)
        return a is not None and b is not None and a == b
    if not (isinstance(claim, str) and isinstance(wanted, str)):
        return False
    if not case_sensitive or (_UUID.fullmatch(claim) and _UUID.fullmatch(wanted)):
        return claim.casefold() == wanted.casefold()
    return claim == wanted


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"true": True, "false": False}.get(v) if isinstance(v, str) else None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _as_number(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))  # the shortest text that reads back as v: 0.1 is "0.1"
    if isinstance(v, str) and len(v) <= _MAX_NUMBER_CHARS and _NUMBER.fullmatch(v):
        return Decimal(v)
    return None
