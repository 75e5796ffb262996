"""Reject unsafe or malformed SAMLResponse bytes before python3-saml or xmlsec ever see them.

This parse only refuses: nothing read here becomes part of an identity. It runs a hardened
lxml parser (no DTD, no entities, no network, no huge trees, comments kept so they can be
refused) and checks the shape of every ds:Signature against an allow-list."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree

from broker.errors import AlgorithmNotAllowed, InvalidAssertion, MalformedRequest, RequestTooLarge

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
RESPONSE = f"{{{NS['samlp']}}}Response"
ASSERTION = f"{{{NS['saml']}}}Assertion"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
INCLUSIVE_NAMESPACES = "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces"

C14N = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    }
)
TRANSFORMS = C14N | {"http://www.w3.org/2000/09/xmldsig#enveloped-signature"}
SIGNATURE_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
DIGEST_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
# Deprecated: accepted only for an IdP with allow_sha1 (decided by the caller, per IdP).
SHA1_METHODS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    }
)

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    strip_cdata=True,
    collect_ids=False,
)


@dataclass(frozen=True, slots=True)
class Screened:
    """What the screen learnt that the caller needs to route and to police algorithms."""

    issuer: str | None  # routing only: python3-saml re-checks every Issuer on its own tree
    audiences: frozenset[str]  # routing only: picks which settings object to validate with
    uses_sha1: bool


def decode(saml_response: str, *, max_b64: int, max_xml: int) -> bytes:
    """Size caps first, then a strict base64 decode: nothing is ever inflated."""
    if len(saml_response) > max_b64:
        raise RequestTooLarge(
            "The SAMLResponse is too large.", log_detail=f"base64 length {len(saml_response)}"
        )
    try:
        raw = base64.b64decode("".join(saml_response.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedRequest(
            "The SAMLResponse is not valid base64.", log_detail="base64 decode failed"
        ) from exc
    if len(raw) > max_xml:
        raise RequestTooLarge(
            "The SAMLResponse is too large.", log_detail=f"decoded length {len(raw)}"
        )
    return raw


def screen(xml: bytes) -> Screened:
    """Parse with the hardened parser and refuse anything outside the profile we accept."""
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedRequest(
            "The SAMLResponse is not well-formed XML.", log_detail="not well-formed XML"
        ) from exc
    docinfo: etree.DocInfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # type: ignore[attr-defined]
        raise MalformedRequest(
            "The SAMLResponse contains a DTD.", log_detail="DOCTYPE/ENTITY declaration refused"
        )
    if root.tag != RESPONSE:
        raise InvalidAssertion(
            "The SAML message is not a Response.", log_detail="root not Response"
        )
    # Comments inside signed text are the 2018 NameID-truncation trick; no IdP needs them.
    if root.getroottree().xpath("boolean(//comment() | //processing-instruction())"):
        raise InvalidAssertion(
            "The SAML response contains XML comments or processing instructions.",
            log_detail="comment or processing instruction refused",
        )
    _check_structure(root)
    uses_sha1 = any(_check_signature(sig) for sig in root.iter(f"{{{NS['ds']}}}Signature"))
    issuer = root.findtext("saml:Issuer", namespaces=NS) or root.findtext(
        "saml:Assertion/saml:Issuer", namespaces=NS
    )
    audiences = frozenset(
        (a.text or "").strip()
        for a in root.iterfind(
            "saml:Assertion/saml:Conditions/saml:AudienceRestriction/saml:Audience", NS
        )
    )
    return Screened(issuer.strip() if issuer else None, audiences, uses_sha1)


def _check_structure(root: etree._Element) -> None:
    """SAML Core §2.3.3 + XSW defence: one Assertion, a child of the Response; every ID unique,
    no xml:id (libxml2 would resolve a Reference to it); no encrypted parts (we hold no key)."""
    assertions = list(root.iter(ASSERTION))
    if len(assertions) != 1 or assertions[0].getparent() is not root:
        raise InvalidAssertion(
            "The SAML response must contain exactly one assertion.",
            log_detail=f"assertion count {len(assertions)} / not a direct child of Response",
        )
    if (
        root.find(".//saml:EncryptedAssertion", NS) is not None
        or root.find(".//saml:EncryptedID", NS) is not None
        or root.find(".//saml:EncryptedAttribute", NS) is not None
    ):
        raise InvalidAssertion(
            "Encrypted assertions are not supported.", log_detail="encrypted element refused"
        )
    seen: set[str] = set()
    for el in root.iter(etree.Element):
        if el.get(XML_ID) is not None:
            raise InvalidAssertion("The SAML response is malformed.", log_detail="xml:id refused")
        ident = el.get("ID")
        if ident is not None:
            if ident in seen:
                raise InvalidAssertion(
                    "The SAML response is malformed.", log_detail="duplicate ID attribute"
                )
            seen.add(ident)


def _check_signature(sig: etree._Element) -> bool:
    """XML-DSig Core §4 profile: one Reference to the parent's ID, allow-listed algorithms and
    transforms only (no XSLT, XPath or base64), no Object/Manifest. Returns True for SHA-1."""
    parent = sig.getparent()
    parent_id = parent.get("ID") if parent is not None else None
    if parent is None or parent.tag not in (RESPONSE, ASSERTION) or not parent_id:
        raise InvalidAssertion(
            "The SAML response has a signature in an unexpected place.",
            log_detail="ds:Signature parent is not the Response or the Assertion",
        )
    refs = sig.findall("ds:SignedInfo/ds:Reference", NS)
    if len(refs) != 1 or refs[0].get("URI") != "#" + parent_id:
        raise InvalidAssertion(
            "The SAML response signature does not cover its parent element.",
            log_detail=f"{len(refs)} Reference(s); URI must be '#'+parent ID",
        )
    if sig.find("ds:Object", NS) is not None or sig.find(".//ds:RetrievalMethod", NS) is not None:
        raise InvalidAssertion(
            "The SAML response signature has unsupported parts.",
            log_detail="ds:Object or ds:RetrievalMethod refused",
        )
    sha1 = False
    checks = (
        ("ds:SignedInfo/ds:CanonicalizationMethod", C14N),
        ("ds:SignedInfo/ds:SignatureMethod", SIGNATURE_METHODS),
        ("ds:SignedInfo/ds:Reference/ds:DigestMethod", DIGEST_METHODS),
    )
    for path, allowed in checks:
        nodes = sig.findall(path, NS)
        alg = nodes[0].get("Algorithm") if len(nodes) == 1 else None
        if alg in SHA1_METHODS and allowed is not C14N:
            sha1 = True
        elif alg not in allowed:
            raise AlgorithmNotAllowed(
                "The SAML response uses an algorithm that is not allowed.",
                log_detail=f"{path.rsplit(':', 1)[-1]} {str(alg)[:100]!r}",
            )
    for transform in sig.iterfind("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", NS):
        alg = transform.get("Algorithm")
        extra = [c for c in transform if c.tag != INCLUSIVE_NAMESPACES]
        if alg not in TRANSFORMS or extra:
            raise AlgorithmNotAllowed(
                "The SAML response uses a signature transform that is not allowed.",
                log_detail=f"Transform {str(alg)[:100]!r}",
            )
    return sha1
