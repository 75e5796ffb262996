"""What IAM can check of an issuer's tokens: its condition keys, and `sub` patterns derived from documented formats.

IAM's web identity condition keys are `<provider>:aud`, `<provider>:sub` (and `amr` for
Cognito). Since January 2026 STS also evaluates some GitHub Actions claims directly
(`actor`, `actor_id`, `job_workflow_ref`, `repository`, `repository_id`, `workflow`, `ref`,
`environment`, `enterprise_id`). Other claims never reach a trust policy; where a documented
`sub` format carries them, a clause on them is rewritten into a `sub` pattern it implies:

- GitHub Actions (docs.github.com, "OpenID Connect reference", example subject claims):
  `repo:OWNER/REPO:ref:REF`, `repo:OWNER/REPO:environment:NAME`, `repo:OWNER/REPO:pull_request`.
  A job that names an environment gets the environment form whatever its ref, and only the
  pull_request event (whose ref is refs/pull/N/merge) gets the pull_request form.
- Kubernetes service-account tokens: `system:serviceaccount:NAMESPACE:NAME`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from itertools import product
from urllib.parse import urlsplit

from broker.setup.conditions import POSITIVE, Atom, Clause

GITHUB_HOST = "token.actions.githubusercontent.com"
GITHUB_KEYS = frozenset(
    {
        "actor",
        "actor_id",
        "job_workflow_ref",
        "repository",
        "repository_id",
        "workflow",
        "ref",
        "environment",
        "enterprise_id",
    }
)
GITHUB_DERIVED = frozenset({"repository", "repository_owner", "ref", "environment"})
K8S_NAMESPACE, K8S_NAME = "kubernetes.io.namespace", "kubernetes.io.serviceaccount.name"
K8S_PREFIX = "system:serviceaccount:"
MAX_PATTERNS = 16
# Keys that pin the repository (or the enterprise) without `sub`.
_PINNING = frozenset({"repository_id", "enterprise_id"})
_GITHUB_OWNER_FIXED = re.compile(r"repo:[^*?$/:]+/")
_K8S_NAMESPACE_FIXED = re.compile(re.escape(K8S_PREFIX) + r"[^*?$:]+:")


@dataclass(frozen=True)
class Issuer:
    """The condition keys one issuer's tokens offer to IAM, and the claims that feed `sub`."""

    url: str
    github: bool
    keys: frozenset[str]  # claims IAM evaluates as `<provider>:<claim>`
    derived: frozenset[str]  # claims rewritten into `sub`, then removed unless in `keys`

    @classmethod
    def of(cls, url: str) -> Issuer:
        parts = urlsplit(url)
        # GitHub.com's issuer, with or without an enterprise's own path; GHES serves
        # its tokens under /_services/token with the same subject format.
        github = parts.hostname == GITHUB_HOST or parts.path.rstrip("/").endswith(
            "/_services/token"
        )
        native = GITHUB_KEYS if parts.hostname == GITHUB_HOST else frozenset()
        derived = (GITHUB_DERIVED if github else frozenset()) | {K8S_NAMESPACE, K8S_NAME}
        return cls(url, github, frozenset({"sub", "aud"}) | native, derived)

    @property
    def readable(self) -> frozenset[str]:
        """Every claim the translator should keep: checked by IAM or feeding `sub`."""
        return self.keys | self.derived


def _as_pattern(op: str, value: str) -> str | None:
    """A positive atom's value as an IAM StringLike pattern; None if it cannot be one."""
    if op == "StringEquals":
        return "".join({"*": "${*}", "?": "${?}", "$": "${$}"}.get(c, c) for c in value)
    if op == "StringLike":
        return value
    return None  # no case-insensitive StringLike in IAM


def _values(clause: Clause, claim: str) -> list[str] | None:
    """The patterns a clause allows for `claim` (the first positive atom), None if unconstrained."""
    for op, c, vals in sorted(clause):
        if c == claim and op in POSITIVE:
            patterns = [_as_pattern(op, v) for v in sorted(vals)]
            if all(p is not None for p in patterns):
                return [p for p in patterns if p is not None]
    return None


def _could_be_pull_ref(pattern: str) -> bool:
    sample = pattern.replace("${*}", "*").replace("${?}", "?").replace("${$}", "$")
    return any(fnmatch.fnmatchcase(r, sample) for r in ("refs/pull/1/merge", "refs/pull/1/head"))


def _github_subs(clause: Clause) -> list[str] | None:
    repos = _values(clause, "repository")
    if repos is None:
        owners = _values(clause, "repository_owner")
        repos = [f"{o}/*" for o in owners] if owners else None
    envs, refs = _values(clause, "environment"), _values(clause, "ref")
    if repos is None and envs is None and refs is None:
        return None
    tails: list[str] = []
    if envs is not None:
        tails = [f"environment:{e}" for e in envs]
    elif refs is not None:
        tails = [f"ref:{r}" for r in refs] + ["environment:*"]
        if any(_could_be_pull_ref(r) for r in refs):
            tails.append("pull_request")
    else:
        tails = ["*"]
    return [f"repo:{r}:{t}" for r, t in product(repos or ["*"], tails)]


def _k8s_subs(clause: Clause) -> list[str] | None:
    namespaces, names = _values(clause, K8S_NAMESPACE), _values(clause, K8S_NAME)
    if namespaces is None and names is None:
        return None
    return [f"{K8S_PREFIX}{ns}:{n}" for ns, n in product(namespaces or ["*"], names or ["*"])]


def rewrite(clause: Clause, issuer: Issuer) -> tuple[Clause, set[str]]:
    """Add the `sub` pattern a clause implies; drop atoms IAM cannot see (a widening, so sound).

    Returns the new clause and the claims dropped from it.
    """
    has_sub = any(c == "sub" and op in POSITIVE for op, c, _ in clause)
    subs = None if has_sub else (_github_subs(clause) if issuer.github else None)
    subs = subs or (None if has_sub else _k8s_subs(clause))
    kept: set[Atom] = {a for a in clause if a[1] in issuer.keys}
    dropped = {c for _, c, _ in clause if c not in issuer.keys}
    if subs and len(subs) <= MAX_PATTERNS:
        wild = any(ch in s for s in subs for ch in "*?$")
        kept.add(("StringLike" if wild else "StringEquals", "sub", frozenset(subs)))
        # What fed the pattern is checked through it (given the documented format).
        dropped -= {c for op, c, _ in clause if op in POSITIVE and c in issuer.derived}
    return frozenset(kept), dropped


def pins_subject(clause: Clause, issuer: Issuer) -> bool:
    """Whether the clause tells apart who may assume the role (not just "anyone from this IdP")."""
    for op, claim, vals in clause:
        if op not in POSITIVE:
            continue
        if claim in _PINNING and claim in issuer.keys:
            return True
        if claim == "sub" and vals and all(_pinned(op, v, issuer) for v in vals):
            return True
    return False


def _pinned(op: str, value: str, issuer: Issuer) -> bool:
    if op != "StringLike":
        return True  # an exact value names one subject
    if issuer.github:
        # Every repository on GitHub shares this issuer: the owner must be fixed.
        return bool(_GITHUB_OWNER_FIXED.match(value))
    if value.startswith(K8S_PREFIX):
        return bool(_K8S_NAMESPACE_FIXED.match(value))
    return bool(value.replace("*", "").replace("?", ""))
