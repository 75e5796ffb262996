"""The AWS session attributes one issuer grant carries for one identity, rendered and checked."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from broker.aws.arn import session_name
from broker.errors import SessionAttributeRefused
from broker.identity import Identity, RoleGrant, WebIdentityToken
from broker.issuer import limits
from broker.issuer.templates import Template, Unresolved


@dataclass(frozen=True, slots=True)
class SessionValues:
    """What the broker signs into the assertion besides the Role pair."""

    session_name: str
    duration: int
    tags: tuple[tuple[str, str], ...]
    transitive: tuple[str, ...]
    source_identity: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "RoleSessionName": self.session_name,
            "SessionDuration": self.duration,
            "PrincipalTag": dict(self.tags),
            "TransitiveTagKeys": list(self.transitive),
            "SourceIdentity": self.source_identity,
        }


def role_session_name(identity: Identity) -> str:
    """The name the upstream identity already settled on (the IdP's RoleSessionName, the OIDC
    IdP's template), else its subject; STS-safe either way."""
    if identity.session_name:
        return session_name(identity.session_name)
    if isinstance(identity.proof, WebIdentityToken):
        return identity.proof.session_name
    return session_name(identity.subject)


def render(identity: Identity, grant: RoleGrant, duration: int) -> SessionValues:
    """Fill the grant's templates from the identity's claims and hold each value to AWS's
    limits (broker.issuer.limits); a value STS would refuse is refused here, naming the role
    and the attribute, before anything is signed or sent."""
    tags = []
    for key, text in grant.session_tags:
        where = f"session tag {key!r}"
        value = _fill(grant, where, text, identity)
        problem = limits.tag_value_problem(value)
        if problem:
            raise _refusal(grant, where, problem)
        tags.append((key, value))
    source = None
    if grant.source_identity is not None:
        source = _fill(grant, "SourceIdentity", grant.source_identity, identity)
        problem = limits.source_identity_problem(source)
        if problem:
            raise _refusal(grant, "SourceIdentity", problem)
    return SessionValues(
        role_session_name(identity), duration, tuple(tags), grant.transitive_tags, source
    )


def _fill(grant: RoleGrant, where: str, text: str, identity: Identity) -> str:
    try:
        return _template(text).render(identity.attributes)
    except Unresolved as exc:
        raise _refusal(grant, where, str(exc)) from None


@lru_cache(maxsize=1024)
def _template(text: str) -> Template:
    return Template.parse(text)  # checked when the config was loaded


def _refusal(grant: RoleGrant, where: str, problem: str) -> SessionAttributeRefused:
    return SessionAttributeRefused(
        f"Role {grant.name!r} cannot be issued to this identity: its {where} would be "
        f"refused by AWS ({problem}).",
        extra={"role": grant.arn, "attribute": where},
    )


def describe(identity: Identity, grant: RoleGrant, duration: int) -> dict[str, Any]:
    """For `broker explain`: how AWS is reached, and what an issuer grant would carry."""
    if grant.via != "issuer":
        return {"via": "idp"}
    try:
        return {"via": "issuer", "session": render(identity, grant, duration).as_dict()}
    except SessionAttributeRefused as exc:
        return {"via": "issuer", "refused": exc.detail}
