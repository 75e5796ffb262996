"""Read a validated assertion's attributes and parse the AWS ones (Role pairs, session values)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from broker.config import PROVIDER_ARN, ROLE_ARN
from broker.errors import InvalidAssertion, InvalidRoleAttribute, InvalidSessionAttribute
from broker.identity import SignedRole

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
AWS = "https://aws.amazon.com/SAML/Attributes/"
ROLE = AWS + "Role"
ROLE_SESSION_NAME = AWS + "RoleSessionName"
SESSION_DURATION = AWS + "SessionDuration"
SOURCE_IDENTITY = AWS + "SourceIdentity"
TRANSITIVE_TAG_KEYS = AWS + "TransitiveTagKeys"
PRINCIPAL_TAG = AWS + "PrincipalTag:"

# IAM: RoleSessionName and SourceIdentity are [\w+=,.@-]{2,64} (ASCII word characters).
SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
# IAM tag keys: letters, digits, spaces and _.:/=+-@, 1-128; values up to 256.
TAG_KEY = re.compile(r"[\w\s.:/=+\-@]{1,128}")
MAX_TAG_VALUE = 256
MAX_SESSION_TAGS = 50
MIN_DURATION, MAX_DURATION = 900, 43200


@dataclass(frozen=True, slots=True)
class AwsAttributes:
    roles: tuple[SignedRole, ...]
    session_name: str | None
    session_duration: int | None


def read_attributes(assertion: etree._Element) -> dict[str, list[str]]:
    """SAML Core §2.7.3: every Attribute of the assertion's AttributeStatements, by Name.

    Values are whole text nodes (comments were refused upstream); a value with element
    content is refused rather than read partially, since `.text` would stop at the child."""
    out: dict[str, list[str]] = {}
    for attr in assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        name = attr.get("Name")
        if not name:
            raise InvalidAssertion("An attribute has no name.", log_detail="Attribute without Name")
        values = out.setdefault(name, [])
        for value in attr.iterfind(f"{{{SAML}}}AttributeValue"):
            if len(value):
                raise InvalidAssertion(
                    "An attribute value has unexpected structure.",
                    log_detail=f"AttributeValue of {name[:100]!r} has element content",
                )
            if value.get(XSI_NIL) in ("true", "1"):
                continue
            text = (value.text or "").strip()
            if text:
                values.append(text)
    return out


def parse_role(value: str, index: int, partition: str) -> SignedRole:
    """AWS IAM SAML: a Role value is "role-arn,provider-arn" in either order, spaces tolerated."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        raise InvalidRoleAttribute(
            "The assertion's Role attribute is malformed.",
            log_detail=f"Role value {index}: expected 'role-arn,provider-arn', got {len(parts)} part(s)",
        )
    roles = [p for p in parts if ROLE_ARN.fullmatch(p)]
    providers = [p for p in parts if PROVIDER_ARN.fullmatch(p) and ":saml-provider/" in p]
    if len(roles) != 1 or len(providers) != 1:
        raise InvalidRoleAttribute(
            "The assertion's Role attribute is malformed.",
            log_detail=f"Role value {index}: needs one IAM role ARN and one SAML provider ARN",
        )
    role, provider = roles[0], providers[0]
    for arn in (role, provider):
        if arn.split(":")[1] != partition:
            raise InvalidRoleAttribute(
                "The assertion names a role outside this broker's AWS partition.",
                log_detail=f"Role value {index}: partition {arn.split(':')[1]}, expected {partition}",
            )
    return SignedRole(role_arn=role, principal_arn=provider)


def _single(attrs: Mapping[str, list[str]], name: str) -> str | None:
    values = attrs.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise InvalidSessionAttribute(
            "A single-valued AWS attribute has several values.",
            log_detail=f"{name.removeprefix(AWS)}: {len(values)} values",
        )
    return values[0]


def parse_aws(
    attrs: Mapping[str, list[str]], partition: str, *, roles_optional: bool = False
) -> AwsAttributes:
    """AWS IAM "Configure SAML assertions for the authentication response": the attributes STS
    reads. Each is checked now so a refusal has a precise reason instead of an STS error.
    `roles_optional` (issuer mode): an assertion without a Role attribute only authenticates;
    it carries no AWS attributes of its own, and no pair it could pass through."""
    values = attrs.get(ROLE) or []
    if not values and roles_optional and ROLE not in attrs:
        return AwsAttributes(roles=(), session_name=None, session_duration=None)
    if not values:
        raise InvalidRoleAttribute(
            "The assertion has no AWS Role attribute.", log_detail="Role attribute missing/empty"
        )
    roles = tuple(dict.fromkeys(parse_role(v, i, partition) for i, v in enumerate(values)))

    session_name = _single(attrs, ROLE_SESSION_NAME)
    if session_name is None or not SESSION_NAME.fullmatch(session_name):
        raise InvalidSessionAttribute(
            "The assertion's RoleSessionName is missing or invalid.",
            log_detail="RoleSessionName missing"
            if session_name is None
            else "RoleSessionName does not match [\\w+=,.@-]{2,64}",
        )
    duration_text = _single(attrs, SESSION_DURATION)
    duration = None
    if duration_text is not None:
        if not duration_text.isascii() or not duration_text.isdigit():
            raise InvalidSessionAttribute(
                "The assertion's SessionDuration is invalid.", log_detail="SessionDuration not int"
            )
        duration = int(duration_text)
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise InvalidSessionAttribute(
                "The assertion's SessionDuration is out of range.",
                log_detail=f"SessionDuration {duration} outside {MIN_DURATION}-{MAX_DURATION}",
            )
    source = _single(attrs, SOURCE_IDENTITY)
    if source is not None and not SESSION_NAME.fullmatch(source):
        raise InvalidSessionAttribute(
            "The assertion's SourceIdentity is invalid.", log_detail="SourceIdentity malformed"
        )
    _check_tags(attrs)
    return AwsAttributes(roles=roles, session_name=session_name, session_duration=duration)


def _check_tags(attrs: Mapping[str, list[str]]) -> None:
    """AWS session tags: PrincipalTag:{key} single-valued; TransitiveTagKeys name set tags."""
    keys: set[str] = set()
    for name in attrs:
        if not name.startswith(PRINCIPAL_TAG):
            continue
        key = name.removeprefix(PRINCIPAL_TAG)
        value = _single(attrs, name)
        if not TAG_KEY.fullmatch(key) or value is None or len(value) > MAX_TAG_VALUE:
            raise InvalidSessionAttribute(
                "A session tag in the assertion is invalid.",
                log_detail="PrincipalTag key or value malformed",
            )
        keys.add(key.lower())
    if len(keys) > MAX_SESSION_TAGS:
        raise InvalidSessionAttribute(
            "The assertion has too many session tags.", log_detail=f"{len(keys)} PrincipalTags"
        )
    for key in attrs.get(TRANSITIVE_TAG_KEYS, []):
        if key.lower() not in keys:
            raise InvalidSessionAttribute(
                "A transitive tag key names no session tag.",
                log_detail="TransitiveTagKeys value without matching PrincipalTag",
            )
