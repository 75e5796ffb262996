"""The AWS attributes of a verified SAML assertion: Role pairs, RoleSessionName, SessionDuration, SourceIdentity, session tags.

From id_roles_providers_create_saml_assertions.md ("Configuring SAML assertions for the
authentication response"), with STS's error messages from troubleshoot_saml.md:
- Role: one or more values, each "role ARN,provider ARN" (AWS accepts either order).
- RoleSessionName: one value of 2-64 characters [\\w+=,.@-]; "RoleSessionName is required in
  AuthnResponse" / "RoleSessionName in AuthnResponse must match [a-zA-Z_0-9+=,.@-]{2,64}".
- SessionDuration: one integer value from 900 to 43200 seconds.
- SourceIdentity: one value (limits.source_identity).
- PrincipalTag:{TagKey} and TransitiveTagKeys: session tags (limits.session_tags).
Attribute names are case sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from broker_demo import limits
from broker_demo.state import StsFault

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
ATTR = "https://aws.amazon.com/SAML/Attributes/"
ROLE = ATTR + "Role"
SESSION_NAME = ATTR + "RoleSessionName"
SESSION_DURATION = ATTR + "SessionDuration"
SOURCE_IDENTITY = ATTR + "SourceIdentity"
PRINCIPAL_TAG = ATTR + "PrincipalTag:"
TRANSITIVE_TAG_KEYS = ATTR + "TransitiveTagKeys"
SESSION_NAME_PATTERN = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
ROLE_IN_PAIR = re.compile(r"arn:[\w-]+:iam::\d{12}:role/\S+", re.ASCII)
PROVIDER_IN_PAIR = re.compile(r"arn:[\w-]+:iam::\d{12}:saml-provider/\S+", re.ASCII)
SESSION_DURATION_RANGE = (900, 43200)


@dataclass(frozen=True, slots=True)
class AwsAttributes:
    roles: tuple[tuple[str, str], ...]  # (role ARN, provider ARN) pairs the IdP signed
    session_name: str
    session_duration: int | None
    source_identity: str | None
    tags: limits.SessionTags


def _invalid(message: str) -> StsFault:
    return StsFault("InvalidIdentityToken", message)


def attribute_values(assertion: etree._Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        name = attribute.get("Name")
        if name:
            values = [
                (value.text or "").strip()
                for value in attribute.iterfind(f"{{{SAML}}}AttributeValue")
            ]
            found.setdefault(name, []).extend(values)
    return found


def role_pairs(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Each Role value is "role ARN,provider ARN" in either order, whitespace tolerated."""
    pairs = []
    for value in values:
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 2:
            continue
        roles = [p for p in parts if ROLE_IN_PAIR.fullmatch(p)]
        providers = [p for p in parts if PROVIDER_IN_PAIR.fullmatch(p)]
        if len(roles) == 1 and len(providers) == 1:
            pairs.append((roles[0], providers[0]))
    return tuple(pairs)


def _one(values: list[str] | None, name: str) -> str | None:
    if values is None:
        return None
    if len(values) != 1:
        raise _invalid(f"The {name} attribute must have exactly one AttributeValue")
    return values[0]


def _session_duration(value: str | None) -> int | None:
    if value is None:
        return None
    low, high = SESSION_DURATION_RANGE
    if not value.isdigit() or not low <= int(value) <= high:
        raise _invalid(f"SessionDuration in AuthnResponse must be an integer from {low} to {high}")
    return int(value)


def aws_attributes(assertion: etree._Element) -> AwsAttributes:
    """Read from the one Assertion whose signature was verified."""
    attributes = attribute_values(assertion)
    session_name = _one(attributes.get(SESSION_NAME), "RoleSessionName")
    if session_name is None:
        raise _invalid("RoleSessionName is required in AuthnResponse")
    if not SESSION_NAME_PATTERN.fullmatch(session_name):
        raise _invalid("RoleSessionName in AuthnResponse must match [a-zA-Z_0-9+=,.@-]{2,64}")
    tags = [
        (name.removeprefix(PRINCIPAL_TAG), values)
        for name, values in attributes.items()
        if name.startswith(PRINCIPAL_TAG)
    ]
    return AwsAttributes(
        roles=role_pairs(attributes.get(ROLE, [])),
        session_name=session_name,
        session_duration=_session_duration(
            _one(attributes.get(SESSION_DURATION), "SessionDuration")
        ),
        source_identity=limits.source_identity(
            _one(attributes.get(SOURCE_IDENTITY), "SourceIdentity")
        ),
        tags=limits.session_tags(tags, attributes.get(TRANSITIVE_TAG_KEYS, [])),
    )
