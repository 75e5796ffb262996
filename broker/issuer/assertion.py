"""The broker's SAML Response for AWS: one signed Assertion, built as IAM documents it.

IAM User Guide, "Configure SAML assertions for the authentication response": exactly one bearer
SubjectConfirmation whose SubjectConfirmationData has NotOnOrAfter and a Recipient equal to the
sign-in SAML endpoint; the audience `urn:amazon:webservices`; the attributes Role
("role-arn,provider-arn"), RoleSessionName, and optionally SessionDuration, PrincipalTag:{key},
TransitiveTagKeys and SourceIdentity. STS redeems an assertion only within 5 minutes of its
IssueInstant, so the assertion lives no longer than that.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from broker.aws.partitions import AWS_SAML_AUDIENCE, PartitionInfo
from broker.issuer.attributes import SessionValues
from broker.issuer.xmlsig import Signer

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AWS = "https://aws.amazon.com/SAML/Attributes/"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
UNSPECIFIED_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
LIFETIME = timedelta(minutes=5)
_NSMAP = {"samlp": SAMLP, "saml": SAML}


@dataclass(frozen=True, slots=True)
class Subject:
    name_id: str
    role_arn: str
    provider_arn: str
    # The upstream IdP's own session end, when it set one: STS caps the credentials to it.
    session_not_on_or_after: datetime | None = None


def _t(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _id() -> str:
    return "_" + secrets.token_hex(20)  # an NCName: never starts with a digit


def _el(
    parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str
) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def build_response(
    *,
    issuer: str,
    partition: PartitionInfo,
    subject: Subject,
    values: SessionValues,
    signer: Signer,
    now: datetime,
) -> str:
    """The base64 SAMLResponse: a Response (unsigned) around one signed Assertion."""
    destination = partition.saml_endpoint
    until = _t(now + LIFETIME)
    issued = _t(now)
    response = etree.Element(
        f"{{{SAMLP}}}Response",
        {"ID": _id(), "Version": "2.0", "IssueInstant": issued, "Destination": destination},
        nsmap=_NSMAP,
    )
    _el(response, SAML, "Issuer", issuer)
    _el(_el(response, SAMLP, "Status"), SAMLP, "StatusCode", Value=SUCCESS)
    assertion = _el(response, SAML, "Assertion", ID=_id(), Version="2.0", IssueInstant=issued)
    issuer_el = _el(assertion, SAML, "Issuer", issuer)
    subj = _el(assertion, SAML, "Subject")
    _el(subj, SAML, "NameID", subject.name_id, Format=PERSISTENT)
    confirmation = _el(subj, SAML, "SubjectConfirmation", Method=BEARER)
    _el(confirmation, SAML, "SubjectConfirmationData", NotOnOrAfter=until, Recipient=destination)
    conditions = _el(assertion, SAML, "Conditions", NotOnOrAfter=until)
    _el(_el(conditions, SAML, "AudienceRestriction"), SAML, "Audience", AWS_SAML_AUDIENCE)
    authn_attrs = {"AuthnInstant": issued, "SessionIndex": _id()}
    if subject.session_not_on_or_after is not None:
        authn_attrs["SessionNotOnOrAfter"] = _t(subject.session_not_on_or_after)
    authn = _el(assertion, SAML, "AuthnStatement", **authn_attrs)
    _el(_el(authn, SAML, "AuthnContext"), SAML, "AuthnContextClassRef", UNSPECIFIED_CONTEXT)
    statement = _el(assertion, SAML, "AttributeStatement")
    attributes: list[tuple[str, list[str]]] = [
        ("Role", [f"{subject.role_arn},{subject.provider_arn}"]),
        ("RoleSessionName", [values.session_name]),
        ("SessionDuration", [str(values.duration)]),
        *((f"PrincipalTag:{key}", [value]) for key, value in values.tags),
    ]
    if values.transitive:
        attributes.append(("TransitiveTagKeys", list(values.transitive)))
    if values.source_identity is not None:
        attributes.append(("SourceIdentity", [values.source_identity]))
    for name, texts in attributes:
        attribute = _el(statement, SAML, "Attribute", Name=AWS + name, NameFormat=URI_FORMAT)
        for text in texts:
            _el(attribute, SAML, "AttributeValue", text)
    signer.sign(assertion, after=issuer_el)
    return base64.b64encode(etree.tostring(response)).decode("ascii")
