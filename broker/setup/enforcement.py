"""Which of a role's restrictions STS enforces in pass-through mode, and which only the broker does.

DESIGN.md, "Two ways to reach AWS": in pass-through the broker forwards the IdP's proof, so
whoever holds it can call STS directly. STS then checks the trust policy and the role's
MaxSessionDuration, nothing else the broker decided: deny rules, session policies and the
broker's own duration cap are advisory.
"""

from __future__ import annotations

import re
import string

from broker.config import Config, GrantTemplate, Rule, SamlIdp

REMEDY = (
    "to make these binding, use issuer mode (the broker signs its own SAML assertion per "
    "request, so its decision is what STS sees), or add a network condition to the trust "
    "policy (IpAddress on aws:SourceIp with the broker's egress addresses) so a proof is "
    "redeemable only through the broker"
)


def template_regex(t: GrantTemplate) -> re.Pattern[str]:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(t.arn):
        parts.append(re.escape(literal))
        if name:
            parts.append(".+")
    return re.compile("".join(parts))


def names(items: list[str | GrantTemplate], role_name: str, role_arn: str) -> GrantTemplate | bool:
    """Whether `items` name the role: True by name or "*", the template that can build its ARN, else False."""
    for item in items:
        if isinstance(item, str) and item in ("*", role_name):
            return True
        if isinstance(item, GrantTemplate) and template_regex(item).fullmatch(role_arn):
            return item
    return False


def broker_only(config: Config, role_name: str, idps: list[str]) -> list[str]:
    """The role's restrictions that STS never sees, one sentence each."""
    role = config.roles[role_name]
    out = [
        f"deny rule {r.name}: the broker refuses {role_name} when it matches; STS never sees deny rules"
        for r in config.rules
        if r.deny and r.idp in ("*", *idps) and names(r.deny, role_name, role.arn)
    ]
    policies = [
        *role.session_policy_arns,
        *(["inline session_policy"] if role.session_policy else []),
    ]
    if policies:
        out.append(
            f"session policy ({', '.join(policies)}): the broker passes it to STS; a direct "
            "call with the same proof gets the role without it"
        )
    out.append(
        f"max_session_seconds {role.max_session_seconds}: the broker asks for no more; STS "
        "allows up to the role's MaxSessionDuration, so set that to the same value "
        "(`setup export` does, `setup plan` checks it)"
    )
    saml = [n for n in idps if isinstance(config.identity_providers[n], SamlIdp)]
    if saml and any(_grants_with_when(r, role_name, role.arn, saml) for r in config.rules):
        out.append(
            f"rules on SAML attributes ({', '.join(saml)}): STS checks only that the IdP's "
            "signed assertion names this role in its Role attribute"
        )
    return out


def _grants_with_when(rule: Rule, role_name: str, role_arn: str, idps: list[str]) -> bool:
    return (
        rule.when is not None
        and rule.idp in ("*", *idps)
        and bool(names(rule.grant, role_name, role_arn))
    )
