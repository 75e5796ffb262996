"""Rules → role grants: pure, no I/O, and every rule's verdict kept for `broker explain`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from broker import claims, matchers
from broker.config import ROLE_ARN, Config, GrantTemplate, Role, Rule, SamlIdp, Via
from broker.identity import Identity, RoleGrant

SIGNED_BY_IDP = "(signed by the IdP)"


@dataclass(frozen=True, slots=True)
class RuleTrace:
    rule: str
    applies: bool  # the rule is for this identity's IdP
    matched: bool
    reason: str
    granted: tuple[str, ...] = ()  # role ARNs
    denied: tuple[str, ...] = ()  # role ARNs, or "*"
    # Each claim path the rule reads → the keys it walked, or None where it did not resolve.
    paths: tuple[tuple[str, tuple[claims.Key, ...] | None], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "applies": self.applies,
            "matched": self.matched,
            "reason": self.reason,
            "granted": list(self.granted),
            "denied": list(self.denied),
            "paths": {p: None if keys is None else list(keys) for p, keys in self.paths},
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    arn: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    grants: tuple[RoleGrant, ...]
    trace: tuple[RuleTrace, ...]
    refused: tuple[Refusal, ...]

    def find(self, wanted: str) -> tuple[RoleGrant, ...]:
        """Granted roles by ARN, else by name (a name may exist in several accounts)."""
        by_arn = tuple(g for g in self.grants if g.arn == wanted)
        return by_arn or tuple(g for g in self.grants if g.name == wanted)


def map_roles(identity: Identity, config: Config) -> Decision:
    """Evaluate every rule against the identity. Deny wins over grant. For SAML, STS accepts
    from the IdP's assertion only the roles the IdP signed, so grants passed through to STS
    are intersected with the signed pairs; roles reached via the broker's issuer are not."""
    traces: list[RuleTrace] = []
    granted: dict[str, RoleGrant] = {}
    denied: dict[str, str] = {}  # arn or "*" → rule
    for rule in config.rules:
        made: dict[str, GrantTemplate] = {}
        trace = _evaluate(rule, identity, config, made)
        traces.append(trace)
        if not trace.matched:
            continue
        for arn in trace.granted:
            granted.setdefault(arn, _grant(arn, rule.name, config, made.get(arn)))
        for arn in trace.denied:
            denied.setdefault(arn, rule.name)

    refused: list[Refusal] = []
    idp = config.identity_providers.get(identity.idp)
    if identity.protocol == "saml":
        signed = {r.role_arn: r.principal_arn for r in identity.signed_roles}
        trust_signed = isinstance(idp, SamlIdp) and idp.trust_assertion_roles
        for arn in [a for a, g in granted.items() if a not in signed and g.via == "idp"]:
            refused.append(
                Refusal(
                    arn,
                    f"granted by rule {granted.pop(arn).rule} but not signed by the IdP "
                    "— STS would refuse",
                )
            )
        for arn, principal in signed.items():
            if arn in granted:
                g = granted[arn]
                if g.via == "idp":  # via issuer, the broker signs its own pair
                    granted[arn] = _with_principal(g, principal)
            elif trust_signed:
                g = _grant(arn, SIGNED_BY_IDP, config, None, signed=True)
                if g.via == "issuer":
                    refused.append(
                        Refusal(
                            arn, "signed by the IdP, but reached via issuer: only a rule grants it"
                        )
                    )
                else:
                    granted[arn] = _with_principal(g, principal)
            else:
                refused.append(
                    Refusal(
                        arn,
                        "signed by the IdP but no rule grants it (trust_assertion_roles is false)",
                    )
                )

    for arn in list(granted):
        by = denied.get(arn) or denied.get("*")
        if by is not None:
            del granted[arn]
            refused.append(Refusal(arn, f"denied by rule {by}"))

    grants = sorted(granted.values(), key=lambda g: (g.account_name or "", g.account_id, g.name))
    return Decision(tuple(grants), tuple(traces), tuple(refused))


def _evaluate(
    rule: Rule, identity: Identity, config: Config, made: dict[str, GrantTemplate]
) -> RuleTrace:
    """One rule's verdict; `made` collects the template behind each templated grant."""
    if rule.idp not in ("*", identity.idp):
        return RuleTrace(rule.name, False, False, f"rule is for IdP {rule.idp!r}")
    if rule.when is None:
        outcome = matchers.Outcome(True, "no conditions", ({},))
    else:
        outcome = rule.when.evaluate(identity.attributes)
    paths = _walks(rule, identity)
    if not outcome.matched:
        return RuleTrace(rule.name, True, False, outcome.reason, paths=paths)
    notes: list[str] = []
    grants = _targets(rule.grant, outcome.bindings, config, notes, deny=False, made=made)
    denies = _targets(rule.deny, outcome.bindings, config, notes, deny=True, made={})
    reason = outcome.reason + "".join(f"; {n}" for n in notes)
    return RuleTrace(rule.name, True, True, reason, grants, denies, paths)


def _walks(rule: Rule, identity: Identity) -> tuple[tuple[str, tuple[claims.Key, ...] | None], ...]:
    out = []
    for path in sorted(matchers.claim_paths(rule.when)) if rule.when else ():
        found = claims.resolve(identity.attributes, path)
        out.append((path, None if found is None else found.keys))
    return tuple(out)


def _targets(
    items: list[str | GrantTemplate],
    bindings: tuple[matchers.Bindings, ...],
    config: Config,
    notes: list[str],
    *,
    deny: bool,
    made: dict[str, GrantTemplate],
) -> tuple[str, ...]:
    arns: dict[str, None] = {}
    for item in items:
        if item == "*":
            # A grant of "*" is every configured role; a deny of "*" is everything,
            # including roles only a template or the IdP's signature would grant.
            if deny:
                return ("*",)
            arns.update(dict.fromkeys(r.arn for r in config.roles.values()))
        elif isinstance(item, str):
            arns[config.roles[item].arn] = None
        else:
            for b in bindings:
                try:
                    arn = item.arn.format_map(b)
                except KeyError as exc:  # an optional group that did not take part
                    notes.append(
                        f"template {item.arn!r} needs {exc.args[0]!r}, which this match did not bind"
                    )
                    continue
                m = ROLE_ARN.fullmatch(arn)
                if m is None:
                    notes.append(f"template produced {arn!r}, not a role ARN")
                elif m["partition"] != config.aws.partition:
                    notes.append(
                        f"template produced {arn!r}, outside partition {config.aws.partition}"
                    )
                else:
                    arns[arn] = None
                    made.setdefault(arn, item)
    return tuple(arns)


def _grant(
    arn: str,
    rule_name: str,
    config: Config,
    template: GrantTemplate | None,
    *,
    signed: bool = False,
) -> RoleGrant:
    """A configured role keeps its own settings; an ARN a template built gets the template's.
    A pair only the IdP's signature grants is always the IdP's proof, passed through."""
    name, role = _configured(arn, config)
    if role is None:
        account = arn.split(":")[4]
        grant = RoleGrant(
            name=name,
            arn=arn,
            account_id=account,
            account_name=config.account_name(account),
            max_session_seconds=template.max_session_seconds if template else 3600,
            rule=rule_name,
        )
        return (
            grant if signed or template is None else _routed(grant, config.via_of(template), config)
        )
    grant = RoleGrant(
        name=name,
        arn=arn,
        account_id=role.account_id,
        account_name=config.account_name(role.account_id),
        max_session_seconds=role.max_session_seconds,
        rule=rule_name,
        session_policy=role.session_policy,
        session_policy_arns=tuple(role.session_policy_arns),
        session_tags=tuple(role.session_tags.items()),
        transitive_tags=tuple(role.transitive_tags),
        source_identity=role.source_identity,
    )
    return _routed(grant, config.via_of(role), config)


def _routed(g: RoleGrant, via: Via, config: Config) -> RoleGrant:
    """Via issuer, STS is called with the broker's own provider in the role's account."""
    if via == "idp" or config.issuer is None:
        return g
    partition = g.arn.split(":")[1]
    return replace(
        g, via="issuer", principal_arn=config.issuer.provider_arn(partition, g.account_id)
    )


def _configured(arn: str, config: Config) -> tuple[str, Role | None]:
    name = config.role_names_by_arn.get(arn)
    if name is None:
        return arn.rsplit("/", 1)[-1], None
    return name, config.roles[name]


def _with_principal(g: RoleGrant, principal: str) -> RoleGrant:
    return replace(g, principal_arn=principal)


@dataclass(frozen=True, slots=True)
class UnresolvedPath:
    rule: str
    path: str
    reached: tuple[claims.Key, ...]  # how far the path walked before it stopped

    def message(self) -> str:
        where = f"; it stops after {claims.show_keys(self.reached)}" if self.reached else ""
        return f"rule {self.rule} reads {self.path!r}, which is not in the sample claims{where}"


def unresolved_paths(
    config: Config, idp: str, sample: Mapping[str, Any]
) -> tuple[UnresolvedPath, ...]:
    """Claim paths that the rules for `idp` read but that do not resolve in a sample token's
    claims: a misspelt or mis-split path never matches, and `not`/`none` around it always do."""
    out: list[UnresolvedPath] = []
    for rule in config.rules:
        if rule.idp not in ("*", idp) or rule.when is None:
            continue
        for path in sorted(matchers.claim_paths(rule.when)):
            if claims.resolve(sample, path) is None:
                out.append(UnresolvedPath(rule.name, path, claims.walked(sample, path)))
    return tuple(out)
