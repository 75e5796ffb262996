"""IdP metadata's own signature: checked with xmlsec against the configured certificates.

The only module that calls xmlsec directly. It returns the very tree it verified, so the
metadata parser reads what the signature covers and nothing else (one read of the XML)."""

from __future__ import annotations

from collections.abc import Sequence

import xmlsec
from lxml import etree

from broker.saml.screen import C14N, DIGEST_METHODS, SHA1_METHODS, SIGNATURE_METHODS, TRANSFORMS

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"md": MD, "ds": DS}
ROOTS = frozenset({f"{{{MD}}}EntityDescriptor", f"{{{MD}}}EntitiesDescriptor"})
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
INCLUSIVE_NAMESPACES = "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces"

# No DTD, entities or network. Comments go: exclusive c14n leaves them out of the digest, so
# one added after signing would still verify and cut a certificate's text short for a parser.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    collect_ids=False,
)


class UntrustedMetadata(ValueError):
    """The metadata's signature is missing, malformed, or made by no configured key."""


def verified_metadata(
    xml: bytes, certificates: Sequence[bytes], *, allow_sha1: bool
) -> etree._Element:
    """The metadata's root element, once an enveloped signature on it verifies with one of
    `certificates` (DER). Raises UntrustedMetadata, saying why."""
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UntrustedMetadata(f"not well-formed XML: {exc.msg}") from None
    docinfo: etree.DocInfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # type: ignore[attr-defined]
        raise UntrustedMetadata("metadata must not carry a DOCTYPE")
    if root.tag not in ROOTS:
        raise UntrustedMetadata("the root element is not md:EntityDescriptor")
    signatures = root.findall("ds:Signature", NS)
    if not signatures:
        raise UntrustedMetadata(
            "the metadata is not signed (no ds:Signature on its root element), but "
            "metadata_signing_certificates is set"
        )
    if len(signatures) > 1:
        raise UntrustedMetadata("the root element must carry exactly one ds:Signature")
    _check_ids(root)
    _check_shape(signatures[0], root, allow_sha1=allow_sha1)
    for der in certificates:
        if _verifies(signatures[0], root, der):
            return root
    raise UntrustedMetadata("the signature does not verify with any metadata_signing_certificates")


def _check_ids(root: etree._Element) -> None:
    """XML-DSig's same-document references resolve by ID: two elements with one ID, or an
    xml:id libxml2 would also resolve, leave room for a wrapped document."""
    seen: set[str] = set()
    for el in root.iter(etree.Element):
        if el.get(XML_ID) is not None:
            raise UntrustedMetadata("xml:id attributes are not accepted")
        ident = el.get("ID")
        if ident is not None:
            if ident in seen:
                raise UntrustedMetadata(f"duplicate ID attribute {ident[:64]!r}")
            seen.add(ident)


def _check_shape(sig: etree._Element, root: etree._Element, *, allow_sha1: bool) -> None:
    """SAML Metadata §3 → SAML Core §5.4: an enveloped signature whose single Reference is
    the signed element's own ID (§5.4.2), exclusive c14n and enveloped-signature transforms
    only (§5.4.4), no Object or RetrievalMethod; allow-listed algorithms (SHA-1 per IdP)."""
    refs = sig.findall("ds:SignedInfo/ds:Reference", NS)
    root_id = root.get("ID")
    if not root_id or len(refs) != 1 or refs[0].get("URI") != "#" + root_id:
        raise UntrustedMetadata("the signature must have one ds:Reference to the root element's ID")
    if sig.find("ds:Object", NS) is not None or sig.find(".//ds:RetrievalMethod", NS) is not None:
        raise UntrustedMetadata("ds:Object and ds:RetrievalMethod are not accepted")
    checks = (
        ("ds:SignedInfo/ds:CanonicalizationMethod", C14N),
        ("ds:SignedInfo/ds:SignatureMethod", SIGNATURE_METHODS),
        ("ds:SignedInfo/ds:Reference/ds:DigestMethod", DIGEST_METHODS),
    )
    for path, allowed in checks:
        nodes = sig.findall(path, NS)
        alg = nodes[0].get("Algorithm") if len(nodes) == 1 else None
        sha1_ok = allow_sha1 and allowed is not C14N and alg in SHA1_METHODS
        if alg not in allowed and not sha1_ok:
            name = path.rsplit(":", 1)[-1]
            raise UntrustedMetadata(f"{name} algorithm {str(alg)[:100]!r} is not allowed")
    for transform in sig.iterfind("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", NS):
        alg = transform.get("Algorithm")
        if alg not in TRANSFORMS or [c for c in transform if c.tag != INCLUSIVE_NAMESPACES]:
            raise UntrustedMetadata(f"Transform {str(alg)[:100]!r} is not allowed")


def _verifies(sig: etree._Element, root: etree._Element, der: bytes) -> bool:
    """xmlsec with the configured key only: whatever KeyInfo the document carries is never
    consulted, so a certificate embedded by an attacker proves nothing."""
    ctx = xmlsec.SignatureContext()
    try:
        ctx.key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
        ctx.register_id(root, "ID")
        ctx.verify(sig)
    except xmlsec.Error:
        return False
    return True
