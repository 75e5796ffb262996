"""How the stand-in's STS checks a SAMLResponse: hardened parse, XML signature, issuer, time windows.

The 5-minute rule: STS redeems a SAML response only within 5 minutes of its IssueInstant and
answers ExpiredTokenException "Token must be redeemed within 5 minutes of issuance" after that
(AWS's own message, as STS returns it; the broker's design relies on it). The window is a
parameter so that tests can wait seconds, not minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import xmlsec
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from broker_demo.iam import SamlProvider
from broker_demo.samlattributes import AwsAttributes, aws_attributes
from broker_demo.state import StsFault

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
NAMEID_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:"
NOT_BEFORE_SKEW = timedelta(seconds=60)
REDEMPTION_WINDOW = timedelta(minutes=5)

# The audiences an IdP's relying-party trust for AWS sign-in carries, per partition.
AWS_SAML_AUDIENCES = {
    "aws": {"urn:amazon:webservices", "https://signin.aws.amazon.com/saml"},
    "aws-us-gov": {
        "urn:amazon:webservices",
        "urn:amazon:webservices:govcloud",
        "https://signin.amazonaws-us-gov.com/saml",
    },
    "aws-cn": {
        "urn:amazon:webservices",
        "urn:amazon:webservices:cn-north-1",
        "https://signin.amazonaws.cn/saml",
    },
}

# Only the transforms a SAML signature legitimately uses; XSLT, XPath and friends are refused.
_REFERENCE_TRANSFORMS = (
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformExclC14NWithComments,
    xmlsec.constants.TransformInclC14N,
    xmlsec.constants.TransformSha1,
    xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformSha384,
    xmlsec.constants.TransformSha512,
)
_SIGNATURE_TRANSFORMS = (
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformExclC14NWithComments,
    xmlsec.constants.TransformInclC14N,
    xmlsec.constants.TransformRsaSha1,
    xmlsec.constants.TransformRsaSha256,
    xmlsec.constants.TransformRsaSha384,
    xmlsec.constants.TransformRsaSha512,
    xmlsec.constants.TransformEcdsaSha256,
    xmlsec.constants.TransformEcdsaSha384,
    xmlsec.constants.TransformEcdsaSha512,
)


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    issuer: str
    subject: str
    subject_format: str | None
    recipient: str | None
    aws: AwsAttributes
    session_not_on_or_after: datetime | None


def _invalid(message: str) -> StsFault:
    return StsFault("InvalidIdentityToken", message)


def _parse(encoded: str) -> etree._Element:
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("The SAML assertion is not valid base64") from exc
    # No DTDs, no entity expansion, no network: a SAML response needs none of them.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _invalid("The SAML response is not well-formed XML") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None:  # set by any DOCTYPE, internal subset or not
        raise _invalid("The SAML response must not contain a DTD")
    return root


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise _invalid(f"{what} is not an xs:dateTime") from exc
    if parsed.tzinfo is None:
        raise _invalid(f"{what} has no time zone")
    return parsed


def _signature_verifies(signature: etree._Element, certificates: Iterable[str]) -> bool:
    for pem in certificates:
        try:
            key = xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
        except xmlsec.Error:
            continue
        ctx = xmlsec.SignatureContext()
        for transform in _REFERENCE_TRANSFORMS:
            ctx.enable_reference_transform(transform)
        for transform in _SIGNATURE_TRANSFORMS:
            ctx.enable_signature_transform(transform)
        # Only the registered certificate's key: whatever KeyInfo the document carries is ignored.
        ctx.key = key
        try:
            ctx.verify(signature)
        except xmlsec.Error:
            continue
        return True
    return False


def _check_signature(
    root: etree._Element, assertion: etree._Element, provider: SamlProvider
) -> None:
    """XML-DSig, enveloped: the Assertion or the Response around it must carry a signature
    whose one Reference points at the element that holds it, under a registered certificate."""
    ids = [el.get("ID") for el in root.iter() if isinstance(el.tag, str) and el.get("ID")]
    if len(ids) != len(set(ids)):
        raise _invalid("The SAML response repeats an ID attribute")
    xmlsec.tree.add_ids(root, ["ID"])
    for element in (assertion, root):
        signature = element.find(f"{{{DS}}}Signature")
        element_id = element.get("ID")
        if signature is None or not element_id:
            continue
        references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        if len(references) != 1 or references[0].get("URI") != f"#{element_id}":
            continue
        if _signature_verifies(signature, provider.certificates_pem):
            return
    raise _invalid("Response signature invalid")


def _redemption_message(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 60 == 0:
        span = f"{seconds // 60} minute" + ("s" if seconds != 60 else "")
    else:
        span = f"{seconds} second" + ("s" if seconds != 1 else "")
    return f"Token must be redeemed within {span} of issuance"


def _check_redemption(
    root: etree._Element, assertion: etree._Element, now: datetime, window: timedelta
) -> None:
    """The Response's and the Assertion's IssueInstant (both required by SAML core) must be
    no older than the redemption window."""
    for element, what in ((root, "Response"), (assertion, "Assertion")):
        issued = _time(element.get("IssueInstant"), f"{what} IssueInstant")
        if issued is None:
            raise _invalid(f"The SAML {what} has no IssueInstant")
        if now - issued > window:
            raise StsFault("ExpiredTokenException", _redemption_message(window))


def verify_assertion(
    encoded: str,
    provider: SamlProvider | None,
    *,
    partition: str,
    now: datetime,
    redemption_window: timedelta = REDEMPTION_WINDOW,
) -> VerifiedAssertion:
    """Check a base64 SAMLResponse; `provider=None` skips the signature (no-verify mode)."""
    root = _parse(encoded)
    if root.tag != f"{{{SAMLP}}}Response":
        raise _invalid("The SAML assertion is not a samlp:Response")
    status = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    if status is None or status.get("Value") != SUCCESS:
        raise _invalid("The SAML response status is not Success")
    if root.find(f".//{{{SAML}}}EncryptedAssertion") is not None:
        raise _invalid("Encrypted assertions are not supported by this stand-in")
    assertions = list(root.iter(f"{{{SAML}}}Assertion"))
    if len(assertions) != 1 or assertions[0].getparent() is not root:
        raise _invalid("The SAML response must hold exactly one Assertion")
    assertion = assertions[0]
    if provider is not None:
        _check_signature(root, assertion, provider)

    # Everything below reads the one tree whose signature was just verified.
    issuer = (assertion.findtext(f"{{{SAML}}}Issuer") or "").strip()
    if not issuer:
        raise _invalid("The SAML assertion has no Issuer")
    if provider is not None and provider.entity_id is not None and issuer != provider.entity_id:
        # troubleshoot_saml.md: "Issuer not present in specified provider" (the metadata's).
        raise _invalid("Issuer not present in specified provider")
    _check_redemption(root, assertion, now, redemption_window)
    name_id = assertion.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
    if name_id is None or not (name_id.text or "").strip():
        raise _invalid("The SAML assertion has no Subject NameID")
    # id_roles_providers_create_saml_assertions.md: "exactly one SubjectConfirmation element
    # with a SubjectConfirmationData element that includes both the NotOnOrAfter attribute
    # and a Recipient attribute".
    confirmations = assertion.findall(f"{{{SAML}}}Subject/{{{SAML}}}SubjectConfirmation")
    if len(confirmations) != 1 or confirmations[0].get("Method") != BEARER:
        raise _invalid("The SAML assertion needs exactly one bearer SubjectConfirmation")
    confirmation = confirmations[0].find(f"{{{SAML}}}SubjectConfirmationData")
    if (
        confirmation is None
        or not confirmation.get("NotOnOrAfter")
        or not confirmation.get("Recipient")
    ):
        raise _invalid("SubjectConfirmationData needs both NotOnOrAfter and Recipient")
    conditions = assertion.find(f"{{{SAML}}}Conditions")
    deadlines = [_time(confirmation.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")]
    if conditions is not None:
        deadlines.append(_time(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter"))
        not_before = _time(conditions.get("NotBefore"), "Conditions NotBefore")
        if not_before is not None and not_before > now + NOT_BEFORE_SKEW:
            raise _invalid("The SAML assertion is not yet valid")
        audiences = [
            (a.text or "").strip()
            for a in conditions.iterfind(f"{{{SAML}}}AudienceRestriction/{{{SAML}}}Audience")
        ]
        if audiences and not set(audiences) & AWS_SAML_AUDIENCES.get(partition, set()):
            raise _invalid("The SAML assertion's audience restriction does not name AWS")
    if any(d is not None and d <= now for d in deadlines):
        raise StsFault("ExpiredTokenException", "Token expired: the SAML assertion has expired")

    authn = assertion.find(f"{{{SAML}}}AuthnStatement")
    session_end = None if authn is None else authn.get("SessionNotOnOrAfter")
    return VerifiedAssertion(
        issuer=issuer,
        subject=(name_id.text or "").strip(),
        subject_format=name_id.get("Format"),
        recipient=confirmation.get("Recipient"),
        aws=aws_attributes(assertion),
        session_not_on_or_after=_time(session_end, "AuthnStatement SessionNotOnOrAfter"),
    )


def name_qualifier(issuer: str, account_id: str, provider_name: str) -> str:
    """AWS's documented recipe: base64(SHA-1(Issuer + account id + "/" + provider name))."""
    digest = hashlib.sha1(f"{issuer}{account_id}/{provider_name}".encode(), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode()


def subject_type(name_id_format: str | None) -> str:
    """STS drops the SAML 2.0 name-id-format prefix (`…:transient` -> `transient`) and passes
    any other format through; a NameID without Format is SAML's `unspecified`."""
    if name_id_format is None:
        return "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    return name_id_format.removeprefix(NAMEID_FORMAT)
