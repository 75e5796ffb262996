"""The checks python3-saml leaves out, run on the very lxml tree it validated (never a re-parse)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree

from broker.errors import (
    InvalidAssertion,
    InvalidAudience,
    InvalidDestination,
    InvalidRecipient,
    InvalidSignature,
    InvalidSubjectConfirmation,
    SessionExpired,
    SignInNotStartedHere,
    TokenExpired,
    TokenNotYetValid,
    UnknownInResponseTo,
    UnknownSigningKey,
    UnsolicitedResponse,
)
from broker.saml.screen import NS
from broker.saml.settings import SamlIdpRuntime, SpEndpoints

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
# SAML Core §1.3.3: times are xs:dateTime in UTC, written with a "Z".
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")
_CONDITIONS_UNDERSTOOD = {
    f"{{{NS['saml']}}}{t}" for t in ("AudienceRestriction", "OneTimeUse", "ProxyRestriction")
}


@dataclass(frozen=True, slots=True)
class Checked:
    assertion: etree._Element
    assertion_id: str
    in_response_to: str | None
    expires_at: datetime
    session_not_on_or_after: datetime | None
    # The older IssueInstant (Response or Assertion): where STS's redemption window starts.
    issued_at: datetime | None = None


def parse_time(value: str | None, what: str) -> datetime:
    m = _TIME.fullmatch(value or "")
    if m is None:
        raise InvalidAssertion(
            "The SAML assertion has a malformed time.", log_detail=f"{what} malformed"
        )
    y, mo, d, h, mi, s, frac = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=UTC)
    except ValueError:
        raise InvalidAssertion(
            "The SAML assertion has a malformed time.", log_detail=f"{what} out of range"
        ) from None


def key_info(doc: etree._Element, certificates: tuple[bytes, ...]) -> None:
    """XML-DSig §4.4: KeyInfo is unsigned and never trusted; python3-saml verifies with the
    configured certificate anyway, but a foreign one in KeyInfo is refused with its own reason."""
    for node in doc.iterfind(".//ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
        try:
            der = base64.b64decode("".join((node.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        if der not in certificates:
            raise UnknownSigningKey(
                "The SAML response was signed with a certificate this broker does not trust.",
                log_detail="KeyInfo X509Certificate is not a configured certificate",
            )


def after_library(
    doc: etree._Element, rt: SamlIdpRuntime, sp: SpEndpoints, now: datetime
) -> Checked:
    """Run every check below on python3-saml's validated document; return what they proved."""
    assertions = doc.findall("saml:Assertion", NS)
    if len(assertions) != 1 or sum(1 for _ in doc.iter(f"{{{NS['saml']}}}Assertion")) != 1:
        raise InvalidAssertion(
            "The SAML response must contain exactly one assertion.", log_detail="assertion count"
        )
    assertion = assertions[0]
    _signature_covers(doc, assertion)
    _destination(doc, sp)
    _audience(assertion, rt)
    skew = timedelta(seconds=rt.config.clock_skew_seconds)
    issued: list[datetime] = []
    for el, what in ((doc, "Response"), (assertion, "Assertion")):
        issued.append(parse_time(el.get("IssueInstant"), f"{what} IssueInstant"))
        if issued[-1] > now + skew:
            raise TokenNotYetValid(
                "The SAML response was issued in the future.",
                log_detail=f"{what} IssueInstant > now",
            )
    bounds = [_conditions(assertion, now, skew)]
    in_response_to = doc.get("InResponseTo")
    bounds.append(_subject_confirmation(assertion, sp, now, skew, in_response_to))
    expires_at = min(b for b in bounds if b is not None)
    return Checked(
        assertion=assertion,
        assertion_id=assertion.get("ID") or "",
        in_response_to=in_response_to,
        expires_at=expires_at,
        session_not_on_or_after=_session(assertion, now),
        issued_at=min(issued),
    )


def _signature_covers(doc: etree._Element, assertion: etree._Element) -> None:
    """SAML Profiles §4.1.3.5 / SAML Core §5.4.2: the assertion we read must be covered by a
    signature python3-saml verified: its own, or the Response's enveloping one."""
    for element in (assertion, doc):
        for ref in element.iterfind("ds:Signature/ds:SignedInfo/ds:Reference", NS):
            if ref.get("URI") == "#" + (element.get("ID") or "\0"):
                return
    raise InvalidSignature(
        "The SAML assertion is not signed.", log_detail="no signature covers the assertion"
    )


def _destination(doc: etree._Element, sp: SpEndpoints) -> None:
    """SAML Bindings §3.5.5.2: a signed Response's Destination must be present and must
    equal (not merely start with) our ACS URL, derived from server.base_url only."""
    destination = doc.get("Destination")
    if destination != sp.acs_url:
        raise InvalidDestination(
            "The SAML response was sent to another endpoint.",
            log_detail="Destination missing"
            if destination is None
            else "Destination is not our ACS URL",
        )


def _audience(assertion: etree._Element, rt: SamlIdpRuntime) -> None:
    """SAML Core §2.5.1.4: at least one AudienceRestriction, and each one names an audience
    we accept (several restrictions must all hold)."""
    restrictions = assertion.findall("saml:Conditions/saml:AudienceRestriction", NS)
    if not restrictions:
        raise InvalidAudience(
            "The SAML assertion has no audience restriction.", log_detail="no AudienceRestriction"
        )
    for restriction in restrictions:
        names = {(a.text or "").strip() for a in restriction.iterfind("saml:Audience", NS)}
        if not names & set(rt.config.audiences):
            raise InvalidAudience(
                "The SAML assertion is for another audience.", log_detail="Audience not accepted"
            )


def _conditions(assertion: etree._Element, now: datetime, skew: timedelta) -> datetime | None:
    """SAML Core §2.5.1.2: NotBefore <= now < NotOnOrAfter (with skew); §2.5.1: a condition we
    do not understand makes the assertion Indeterminate, which we refuse."""
    conditions = assertion.find("saml:Conditions", NS)
    if conditions is None:
        raise InvalidAssertion("The SAML assertion has no conditions.", log_detail="no Conditions")
    for child in conditions:
        if child.tag not in _CONDITIONS_UNDERSTOOD:
            raise InvalidAssertion(
                "The SAML assertion has an unknown condition.", log_detail="unknown Condition"
            )
    not_before = conditions.get("NotBefore")
    if not_before is not None and parse_time(not_before, "Conditions NotBefore") > now + skew:
        raise TokenNotYetValid(
            "The SAML assertion is not yet valid.", log_detail="Conditions NotBefore > now"
        )
    if conditions.get("NotOnOrAfter") is None:
        return None
    not_on_or_after = parse_time(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter")
    if not_on_or_after <= now - skew:
        raise TokenExpired(
            "The SAML assertion has expired.", log_detail="Conditions NotOnOrAfter <= now"
        )
    return not_on_or_after


def _subject_confirmation(
    assertion: etree._Element,
    sp: SpEndpoints,
    now: datetime,
    skew: timedelta,
    in_response_to: str | None,
) -> datetime:
    """SAML Profiles §4.1.4.2: exactly one bearer SubjectConfirmation (AWS requires one) whose
    data has Recipient == our ACS URL, a NotOnOrAfter, no NotBefore, and an InResponseTo equal
    to the Response's."""
    confirmations = assertion.findall("saml:Subject/saml:SubjectConfirmation", NS)
    if len(confirmations) != 1:
        raise InvalidSubjectConfirmation(
            "The SAML assertion must have exactly one subject confirmation.",
            log_detail=f"{len(confirmations)} SubjectConfirmation elements",
        )
    confirmation = confirmations[0]
    data = confirmation.findall("saml:SubjectConfirmationData", NS)
    if confirmation.get("Method") != BEARER or len(data) != 1:
        raise InvalidSubjectConfirmation(
            "The SAML assertion's subject confirmation is not a bearer confirmation.",
            log_detail="Method is not bearer or SubjectConfirmationData missing",
        )
    scd = data[0]
    recipient = scd.get("Recipient")
    if recipient != sp.acs_url:
        raise InvalidRecipient(
            "The SAML assertion is addressed to another endpoint.",
            log_detail="Recipient missing" if recipient is None else "Recipient is not our ACS URL",
        )
    if scd.get("NotBefore") is not None:
        raise InvalidSubjectConfirmation(
            "The SAML assertion's subject confirmation is not valid.",
            log_detail="bearer SubjectConfirmationData has NotBefore",
        )
    if scd.get("NotOnOrAfter") is None:
        raise InvalidSubjectConfirmation(
            "The SAML assertion's subject confirmation has no expiry.",
            log_detail="SubjectConfirmationData NotOnOrAfter missing",
        )
    if scd.get("InResponseTo") != in_response_to:
        raise InvalidSubjectConfirmation(
            "The SAML assertion's subject confirmation is not valid.",
            log_detail="SubjectConfirmationData InResponseTo differs from the Response's",
        )
    not_on_or_after = parse_time(scd.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")
    if not_on_or_after <= now - skew:
        raise TokenExpired(
            "The SAML assertion has expired.",
            log_detail="SubjectConfirmationData NotOnOrAfter <= now",
        )
    return not_on_or_after


def _session(assertion: etree._Element, now: datetime) -> datetime | None:
    """SAML Core §2.7.2: AuthnStatement SessionNotOnOrAfter bounds the session (STS honours it)."""
    values = [s.get("SessionNotOnOrAfter") for s in assertion.iterfind("saml:AuthnStatement", NS)]
    times = [parse_time(v, "SessionNotOnOrAfter") for v in values if v is not None]
    if not times:
        return None
    earliest = min(times)
    if earliest <= now:
        raise SessionExpired(
            "The SAML session has expired.", log_detail="SessionNotOnOrAfter <= now"
        )
    return earliest


def name_id(assertion: etree._Element) -> str:
    """SAML Core §2.2.3: the subject is the one NameID's whole text (comments were refused)."""
    nodes = assertion.findall("saml:Subject/saml:NameID", NS)
    text = (nodes[0].text or "").strip() if len(nodes) == 1 and not len(nodes[0]) else ""
    if not text:
        raise InvalidAssertion(
            "The SAML assertion has no usable NameID.", log_detail="NameID missing/empty/complex"
        )
    return text


def solicited(rt: SamlIdpRuntime, irt: str | None, started: Mapping[str, str] | None) -> None:
    """SAML Profiles §4.1.4.2/§4.1.5: InResponseTo must name a request we sent to this
    IdP; without one the response is unsolicited. OWASP CSRF cheat sheet (login CSRF):
    the request must also be one the posting browser started, or anyone's AuthnRequest,
    answered for their own account, would sign another person's browser in as them."""
    if irt is None:
        if not rt.config.idp_initiated:
            raise UnsolicitedResponse(
                "This identity provider must be used through the broker's sign-in page.",
                log_detail=f"unsolicited response, idp_initiated=false idp={rt.name}",
            )
        return
    if started is None:
        raise UnknownInResponseTo(
            "The SAML response answers no sign-in request of ours.",
            log_detail="InResponseTo unknown: a caller without a browser sign-in",
        )
    sent_to = started.get(irt)
    if sent_to is None:
        raise SignInNotStartedHere(
            "This sign-in was not started in this browser, or it took too long.",
            log_detail="InResponseTo unknown to this browser (another's, expired or forged)",
        )
    if sent_to != rt.name:
        raise UnknownInResponseTo(
            "The SAML response answers no sign-in request of ours.",
            log_detail=f"InResponseTo was sent to another IdP, response from {rt.name}",
        )
