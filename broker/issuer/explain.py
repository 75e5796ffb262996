"""`broker explain` for issuer grants: which session attributes the broker would sign, or why not."""

from __future__ import annotations

from typing import Any

from broker.aws.arn import clamp_duration
from broker.config import Config
from broker.identity import Identity, RoleGrant
from broker.issuer.attributes import describe


def carried(config: Config, identity: Identity, grant: RoleGrant) -> dict[str, Any]:
    """How STS is reached and, via issuer, the attributes at the role's longest session
    (nothing without issuer mode: every grant is then the IdP's proof)."""
    if config.issuer is None:
        return {}
    return describe(identity, grant, clamp_duration(None, grant.max_session_seconds))


def carried_lines(config: Config, identity: Identity, grant: RoleGrant) -> list[str]:
    shown = carried(config, identity, grant)
    if not shown:
        return []
    if shown["via"] == "idp":
        return ["via idp: the IdP's own proof goes to STS"]
    if "refused" in shown:
        return [f"via issuer, REFUSED at issuance: {shown['refused']}"]
    session = shown["session"]
    lines = [
        f"via issuer ({grant.principal_arn}): RoleSessionName {session['RoleSessionName']}, "
        f"SessionDuration {session['SessionDuration']}"
    ]
    lines += [f"PrincipalTag:{k} = {v}" for k, v in session["PrincipalTag"].items()]
    if session["TransitiveTagKeys"]:
        lines.append("TransitiveTagKeys: " + ", ".join(session["TransitiveTagKeys"]))
    if session["SourceIdentity"] is not None:
        lines.append(f"SourceIdentity = {session['SourceIdentity']}")
    return lines
