"""The least-privilege trust policy a configured role needs for the broker to assume it."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from broker.config import (
    PROVIDER_ARN,
    Config,
    GrantTemplate,
    OidcIdp,
    Rule,
    SamlIdp,
    is_loopback_url,
)
from broker.matchers import ClaimTest, Matcher, Not
from broker.setup import SetupError
from broker.setup.conditions import POSITIVE, Clause, Translator
from broker.setup.enforcement import REMEDY, broker_only, names
from broker.setup.iam import provider_path
from broker.setup.issuer import issuer_policy
from broker.setup.subjects import Issuer, pins_subject, rewrite

# IAM's default quota for a role trust policy, in characters (raisable to 4096).
TRUST_POLICY_QUOTA = 2048
OPT_IN = "--allow-any-subject"


@dataclass
class TrustPolicy:
    role: str
    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    # Restrictions the broker applies that STS never sees (pass-through mode).
    broker_only: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "policy": self.document,
            "warnings": self.warnings,
            "broker_only": self.broker_only,
            "remedy": REMEDY if self.broker_only else None,
        }


def grants(rule: Rule, role_name: str, role_arn: str) -> bool:
    """Whether `rule` can grant the role: by name, by "*", or by a template that can build its ARN."""
    return bool(names(rule.grant, role_name, role_arn))


def rules_granting(config: Config, role_name: str, idp_name: str) -> list[Rule]:
    arn = config.roles[role_name].arn
    return [r for r in config.rules if r.idp in ("*", idp_name) and grants(r, role_name, arn)]


def trust_policy(
    config: Config,
    role_name: str,
    *,
    idp: str | None = None,
    tags: bool = False,
    source_identity: bool = False,
    provider_arn: str | None = None,
    allow_any_subject: bool = False,
) -> TrustPolicy:
    """The role's trust policy; refused when STS could not tell apart who may assume it.

    Rule of the broker's design ("Two ways to reach AWS"): in pass-through, whoever holds an
    accepted proof can call STS directly, so the trust policy is the only check AWS makes.
    A policy that admits any subject of an IdP is refused unless `allow_any_subject`.
    """
    role = config.roles.get(role_name)
    if role is None:
        raise SetupError(
            f"no role named {role_name!r} in roles (have: {', '.join(sorted(config.roles)) or 'none'})"
        )
    if idp is not None and idp not in config.identity_providers:
        raise SetupError(f"no identity provider named {idp!r}")
    idps = (
        [idp]
        if idp
        else [n for n in config.identity_providers if rules_granting(config, role_name, n)]
    )
    if not idps:
        raise SetupError(
            f"no rule grants role {role_name!r}, so the broker never assumes it: nothing to trust"
        )
    if config.via_of(role) == "issuer":  # only the broker's provider: no IdP proof reaches it
        return TrustPolicy(role_name, issuer_policy(config, role_name))
    if provider_arn is not None and (len(idps) > 1 or not PROVIDER_ARN.fullmatch(provider_arn)):
        raise SetupError(
            "--provider-arn needs a valid IAM provider ARN and a single identity provider (use --idp)"
        )
    policy = TrustPolicy(role_name, {"Version": "2012-10-17", "Statement": []})
    unpinned: list[str] = []
    partition, account = role.arn.split(":")[1], role.account_id
    for name in idps:
        idp_cfg = config.identity_providers[name]
        rules = rules_granting(config, role_name, name)
        if not rules:
            policy.warnings.append(f"no rule grants {role_name!r} to identities from {name!r}")
        if isinstance(idp_cfg, SamlIdp):
            arn = provider_arn or f"arn:{partition}:iam::{account}:saml-provider/{name}"
            policy.document["Statement"].append(
                _saml_statement(
                    config,
                    arn,
                    tags or idp_cfg.session_tags,
                    source_identity or idp_cfg.source_identity,
                    policy,
                )
            )
        else:
            arn = (
                provider_arn
                or f"arn:{partition}:iam::{account}:oidc-provider/{provider_path(idp_cfg.issuer)}"
            )
            statements = _oidc_statements(
                name,
                idp_cfg,
                rules,
                arn,
                _actions("sts:AssumeRoleWithWebIdentity", tags, source_identity),
                policy,
                unpinned,
            )
            policy.document["Statement"].extend(statements)
    if unpinned and not allow_any_subject:
        raise SetupError(
            f"refusing the trust policy of role {role_name!r}: STS could not tell apart the "
            "identities these rules admit, so any token from the IdP with an accepted audience "
            "could assume the role directly:\n  "
            + "\n  ".join(unpinned)
            + "\nPin a subject IAM can check (GitHub: repository or owner, with ref or "
            "environment; Kubernetes: the service account's namespace), bind template rules "
            f"to one IdP, or pass {OPT_IN} to accept this",
            extra={"unpinned": unpinned},
        )
    policy.warnings += [
        f"WARNING: {why}: ANY identity of that IdP can assume this role" for why in unpinned
    ]
    policy.broker_only += broker_only(config, role_name, idps)
    size = len(json.dumps(policy.document, separators=(",", ":")))
    if size > TRUST_POLICY_QUOTA:
        policy.warnings.append(
            f"the policy is {size} characters; IAM's default trust policy quota is {TRUST_POLICY_QUOTA}"
        )
    return policy


def _actions(action: str, tags: bool, source_identity: bool) -> str | list[str]:
    extra = (["sts:TagSession"] if tags else []) + (
        ["sts:SetSourceIdentity"] if source_identity else []
    )
    return [action, *extra] if extra else action


def _saml_statement(
    config: Config, arn: str, tags: bool, source_identity: bool, policy: TrustPolicy
) -> dict[str, Any]:
    # With a broker in between, the assertion's Recipient (and so SAML:aud) is our ACS URL,
    # not AWS's sign-in URL.
    acs = config.server.base_url + "/saml/acs"
    if is_loopback_url(acs) and acs.startswith("http:"):
        policy.warnings.append(
            f"SAML:aud is {acs}, a plain-http loopback URL: only right for a local demo"
        )
    return {
        "Effect": "Allow",
        "Principal": {"Federated": arn},
        "Action": _actions("sts:AssumeRoleWithSAML", tags, source_identity),
        "Condition": {"StringEquals": {"SAML:aud": acs}},
    }


def _oidc_statements(
    name: str,
    idp: OidcIdp,
    rules: list[Rule],
    arn: str,
    action: str | list[str],
    policy: TrustPolicy,
    unpinned: list[str],
) -> list[dict[str, Any]]:
    key = provider_path(idp.issuer)
    issuer = Issuer.of(idp.issuer)
    clauses: list[Clause] = []
    for rule in rules:
        tr = Translator(issuer=idp.issuer, keys=issuer.readable)
        approx = tr.translate(rule.when)
        policy.warnings += [f"rule {rule.name}: {w}" for w in tr.warnings]
        if not approx.clauses:
            policy.warnings.append(f"rule {rule.name} can never match on sub/aud; it adds nothing")
        unseen = set(tr.dropped)
        rewritten = []
        for clause in approx.clauses:
            new, dropped = rewrite(clause, issuer)
            unseen |= dropped
            rewritten.append(new)
        if unseen:
            policy.broker_only.append(
                f"rule {rule.name} ({name}) tests {', '.join(sorted(unseen))}, which IAM "
                "cannot check: the broker does, STS does not"
            )
        if any(not pins_subject(c, issuer) for c in rewritten):
            unpinned.append(_unpinned(rule, name, unseen, tr.warnings))
        clauses += rewritten
    # Programs' audiences, and with browser sign-in the broker's client ID: the ID tokens
    # it passes through carry that as their aud.
    base = ("StringEquals", "aud", frozenset(idp.sts_audiences()))
    statements = []
    for clause in _merge(list(dict.fromkeys(clauses))):
        condition = _condition(clause | {base}, key)
        if condition is None:
            continue
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"Federated": arn},
                "Action": action,
                "Condition": condition,
            }
        )
    return statements


def _unpinned(rule: Rule, idp: str, unseen: set[str], translation: list[str]) -> str:
    where = f"rule {rule.name} for {idp}"
    if rule.idp == "*":
        template = next((g for g in rule.grant if isinstance(g, GrantTemplate)), None)
        shown = f", grant template {template.arn}" if template else ""
        where += f' (idp: "*"{shown})'
    if rule.when is None:
        return f"{where}: matches any token from {idp}"
    if unseen:
        return f"{where}: tests {', '.join(sorted(unseen))}, which IAM cannot check"
    if translation:
        return f"{where}: {'; '.join(translation)}"
    return (
        f"{where}: its tests on {', '.join(sorted(claims(rule.when)))} do not pin a subject "
        "(the repository's owner, the service account's namespace, one user)"
    )


def claims(m: Matcher) -> set[str]:
    if isinstance(m, ClaimTest):
        return {m.claim}
    if isinstance(m, Not):
        return claims(m.child)
    return set().union(*(claims(c) for c in m.children))


def _merge(clauses: list[Clause]) -> list[Clause]:
    """Fold single-atom clauses into one value list per operator (values OR together)."""
    if frozenset() in clauses:
        return [frozenset()]
    singles: dict[tuple[str, str], set[str]] = defaultdict(set)
    rest: list[Clause] = []
    for c in clauses:
        (op, claim, vals), *more = c
        if not more and op in POSITIVE:
            singles[(op, claim)] |= vals
        else:
            rest.append(c)
    eq, like = singles.get(("StringEquals", "sub")), singles.get(("StringLike", "sub"))
    if eq and like and not any(ch in v for v in eq for ch in "*?$"):
        like |= singles.pop(("StringEquals", "sub"))  # a literal is its own StringLike pattern
    merged = [frozenset({(op, claim, frozenset(v))}) for (op, claim), v in sorted(singles.items())]
    return merged + rest


def _condition(clause: Clause, key: str) -> dict[str, dict[str, Any]] | None:
    """One Condition block; None when the atoms contradict (e.g. two disjoint StringEquals)."""
    block: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for op, claim, vals in sorted(clause, key=lambda a: (a[0], a[1], sorted(a[2]))):
        have = block[op].get(claim)
        if have is None:
            block[op][claim] = set(vals)
        elif op.startswith("StringNot"):
            have |= vals  # none of these: the lists add up
        elif op == "StringLike":
            block[op][claim] = (
                have  # two patterns can't be ANDed in one key; keep the first (wider)
            )
        else:
            have &= vals
            if not have:
                return None
    return {
        op: {f"{key}:{claim}": _one_or_list(v) for claim, v in sorted(claims.items())}
        for op, claims in sorted(block.items())
    }


def _one_or_list(values: set[str]) -> str | list[str]:
    ordered = sorted(values)
    return ordered[0] if len(ordered) == 1 else ordered
