"""Translate a rule's `when` into IAM condition clauses (`sub`, `aud`, …), never narrower than the rule.

A trust policy may only over-approximate the broker's rules: anything the broker grants must
still pass STS. So every matcher becomes a disjunction of clauses (one Statement each), each
clause a conjunction of atoms (operator, claim, values), plus a flag saying whether the
translation is exact. Only an exact translation may be negated; anything IAM cannot express
becomes "no constraint" and a warning that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.matchers import ClaimTest, Matcher, Not

KEYS = ("sub", "aud")
MAX_CLAUSES = 16
NEGATE = {
    "StringEquals": "StringNotEquals",
    "StringNotEquals": "StringEquals",
    "StringEqualsIgnoreCase": "StringNotEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringLike": "StringNotLike",
    "StringNotLike": "StringLike",
}
POSITIVE = ("StringEquals", "StringEqualsIgnoreCase", "StringLike")

Atom = tuple[str, str, frozenset[str]]  # operator, claim, values (ORed for positive operators)
Clause = frozenset[Atom]


@dataclass(frozen=True)
class Approx:
    clauses: tuple[Clause, ...]  # ORed; () never matches, (frozenset(),) always does
    exact: bool

    @property
    def unconstrained(self) -> bool:
        return frozenset() in self.clauses


TRUE = Approx((frozenset(),), exact=True)
NEVER = Approx((), exact=True)
DROPPED = Approx((frozenset(),), exact=False)


@dataclass
class Translator:
    # The IdP's issuer: a test on `iss` is then decided here (the broker verifies iss anyway).
    issuer: str | None = None
    # Claims IAM can see for this issuer (or that feed a `sub` pattern); others are dropped.
    keys: frozenset[str] = frozenset(KEYS)
    warnings: list[str] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)

    def translate(self, m: Matcher | None) -> Approx:
        if m is None:
            return TRUE
        if isinstance(m, ClaimTest):
            return self._test(m)
        if isinstance(m, Not):
            return self._negate(self.translate(m.child), "not")
        parts = [self.translate(c) for c in m.children]
        if m.kind == "any":
            return _simplify(
                Approx(tuple(c for p in parts for c in p.clauses), all(p.exact for p in parts))
            )
        if m.kind == "none":
            parts = [self._negate(p, "none") for p in parts]
        result = TRUE
        for p in parts:
            result = self._and(result, p)
        return result

    def _and(self, a: Approx, b: Approx) -> Approx:
        clauses = tuple(dict.fromkeys(x | y for x in a.clauses for y in b.clauses))
        if len(clauses) > MAX_CLAUSES:
            self.warnings.append(
                f"the rule has too many alternatives for a trust policy (> {MAX_CLAUSES}); not constrained"
            )
            return DROPPED
        return _simplify(Approx(clauses, a.exact and b.exact))

    def _negate(self, a: Approx, how: str) -> Approx:
        if not a.exact:
            self.warnings.append(
                f"a `{how}` over a test IAM cannot express exactly cannot be negated; it is left out of the policy"
            )
            return DROPPED
        # not (C1 or C2 ...) = AND over clauses of (OR over the clause's negated atoms).
        result = TRUE
        for clause in a.clauses:
            alts = Approx(
                tuple(frozenset({(NEGATE[op], key, vals)}) for op, key, vals in clause), True
            )
            result = self._and(result, alts)
        return result

    def _test(self, t: ClaimTest) -> Approx:
        if t.claim == "iss" and self.issuer is not None and t.op in ("equals", "in"):
            values = {_text(v) for v in (t.value if isinstance(t.value, list) else [t.value])}
            return TRUE if (self.issuer in values) != (t.each == "none") else NEVER
        if t.claim not in self.keys:
            self.dropped.add(t.claim)
            return DROPPED
        a = self._positive(t)
        # The claims IAM reads are single-valued: each=any and each=all agree; each=none negates.
        return self._negate(a, "each: none") if t.each == "none" else a

    def _positive(self, t: ClaimTest) -> Approx:
        eq = "StringEquals" if t.case_sensitive else "StringEqualsIgnoreCase"
        if t.op == "exists":
            return TRUE if t.value else NEVER
        if t.op in ("equals", "in", "contains"):
            values = {_text(v) for v in (t.value if isinstance(t.value, list) else [t.value])}
            if t.op == "contains" and len(values) > 1:
                return NEVER  # one value cannot equal several
            return (
                Approx((frozenset({(eq, t.claim, frozenset(values))}),), True) if values else NEVER
            )
        if not t.case_sensitive:
            self.warnings.append(
                f"{t.claim}: a case-insensitive {t.op} has no IAM operator (there is no StringLikeIgnoreCase); "
                "not constrained"
            )
            return DROPPED
        tokens = glob_tokens(t.value) if t.op == "glob" else regex_tokens(t.value)
        if tokens is None:
            self.warnings.append(
                f"{t.claim}: the regex {t.value!r} cannot be expressed in the IAM policy language; "
                "not constrained by this test"
            )
            return DROPPED
        atoms, exact = [], True
        for alternative, alt_exact in tokens:
            exact = exact and alt_exact
            atoms.append(_atom(t.claim, alternative))
        if not exact:
            self.warnings.append(
                f"{t.claim}: {t.op} {t.value!r} is widened to fit IAM's * and ? wildcards"
            )
        return _simplify(Approx(tuple(frozenset({a}) for a in atoms), exact))


def _text(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _atom(claim: str, tokens: list[str]) -> Atom:
    """Tokens are literal characters, or "\0*" / "\0?" for IAM's wildcards."""
    if all(not t.startswith("\0") for t in tokens):
        return ("StringEquals", claim, frozenset({"".join(tokens)}))
    out = []
    for t in tokens:
        # IAM policy language: ${*} ${?} ${$} are the literal characters inside StringLike.
        out.append(
            t[1] if t.startswith("\0") else {"*": "${*}", "?": "${?}", "$": "${$}"}.get(t, t)
        )
    return ("StringLike", claim, frozenset({"".join(out)}))


def _simplify(a: Approx) -> Approx:
    if frozenset() in a.clauses:
        return Approx((frozenset(),), a.exact)
    return Approx(tuple(dict.fromkeys(a.clauses)), a.exact)


Alternatives = list[tuple[list[str], bool]]


def glob_tokens(glob: str) -> Alternatives:
    """fnmatch → IAM: * and ? carry over; a [class] widens to ? (one character)."""
    out, exact, i = [], True, 0
    while i < len(glob):
        c = glob[i]
        if c in "*?":
            out.append("\0" + c)
        elif c == "[" and (end := glob.find("]", i + 2)) != -1:
            out.append("\0?")
            exact, i = False, end
        else:
            out.append(c)
        i += 1
    return [(out, exact)]


_CLASS_ESCAPES = set("dDwWsS")


def regex_tokens(pattern: str) -> Alternatives | None:
    """A practical subset of regex → IAM wildcards; None when IAM cannot express it."""
    alternatives, depth, start = [], 0, 0
    for i, c in enumerate(pattern):
        if c == "\\":
            continue
        if c in "([" and (i == 0 or pattern[i - 1] != "\\"):
            depth += 1
        elif c in ")]" and (i == 0 or pattern[i - 1] != "\\"):
            depth -= 1
        elif c == "|" and depth == 0 and (i == 0 or pattern[i - 1] != "\\"):
            alternatives.append(pattern[start:i])
            start = i + 1
    alternatives.append(pattern[start:])
    result = []
    for alt in alternatives:
        got = _sequence(
            alt.removeprefix("^").removesuffix("$")
            if not alt.endswith("\\$")
            else alt.removeprefix("^")
        )
        if got is None:
            return None
        result.append(got)
    return result


def _sequence(p: str) -> tuple[list[str], bool] | None:
    out: list[str] = []
    exact, i = True, 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            nxt = p[i + 1]
            if nxt.isalnum() and nxt not in _CLASS_ESCAPES:
                return None  # \b, \1, \A…: no IAM equivalent
            atom, atom_exact, i = (
                (["\0?"], False, i + 2) if nxt in _CLASS_ESCAPES else ([nxt], True, i + 2)
            )
        elif c == ".":
            atom, atom_exact, i = ["\0?"], True, i + 1
        elif c == "[":
            end = p.find("]", i + 2 if p[i + 1 : i + 2] in ("]", "^") else i + 1)
            if end == -1:
                return None
            atom, atom_exact, i = ["\0?"], False, end + 1
        elif c == "(":
            close = _matching(p, i)
            if close is None or (p[i + 1 : i + 3] not in ("?P", "?:") and p[i + 1 : i + 2] == "?"):
                return None
            inner = p[i + 1 : close]
            if inner.startswith("?P<"):
                inner = inner[inner.index(">") + 1 :]
            elif inner.startswith("?:"):
                inner = inner[2:]
            got = _sequence(inner) if "|" not in inner else None
            if got is None:
                return None
            atom, atom_exact, i = got[0], got[1], close + 1
        elif c in "*+?{}|^$)":
            return None
        else:
            atom, atom_exact, i = [c], True, i + 1
        quant = p[i : i + 1]
        if quant in ("*", "+", "?"):
            i += 1 + (p[i + 1 : i + 2] == "?")  # lazy forms widen the same way
            any_char = atom == ["\0?"] and atom_exact
            if quant == "+":
                out += [*atom, "\0*"]
            else:
                out.append("\0*")
            exact = (
                exact and atom_exact and (any_char or (quant == "*" and not atom)) and quant != "?"
            )
            continue
        if quant == "{":
            return None
        out += atom
        exact = exact and atom_exact
    return out, exact


def _matching(p: str, i: int) -> int | None:
    depth = 0
    for j in range(i, len(p)):
        if p[j] == "\\":
            continue
        if p[j] == "(" and (j == 0 or p[j - 1] != "\\"):
            depth += 1
        elif p[j] == ")" and p[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return j
    return None
