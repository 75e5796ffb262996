"""The one module that signs XML (python-xmlsec): enveloped RSA-SHA256 over exclusive c14n."""

from __future__ import annotations

import xmlsec
from lxml import etree

from broker.errors import BrokerError
from broker.issuer.keys import KeyRing

DS = "http://www.w3.org/2000/09/xmldsig#"


class Signer:
    """XML-DSig enveloped signatures, as SAML Core §5.4 profiles them: one Reference to the
    signed element's ID, the enveloped-signature and exclusive c14n transforms, SHA-256
    digests, RSA-SHA256, and the certificate in KeyInfo (verifiers use the metadata's)."""

    def __init__(self, keys: KeyRing) -> None:
        try:
            self._key = xmlsec.Key.from_memory(
                keys.signing_key_pem, xmlsec.constants.KeyDataFormatPem
            )
            self._key.load_cert_from_memory(
                keys.signing_certificate.pem, xmlsec.constants.KeyDataFormatCertPem
            )
        except xmlsec.Error as exc:
            raise BrokerError("the issuer's signing key could not be loaded") from exc

    def sign(self, element: etree._Element, after: etree._Element) -> None:
        """Sign `element` (which has an ID) in place; the Signature goes right after `after`
        (SAML Core §2.3.3: after the Assertion's Issuer)."""
        element_id = element.get("ID")
        if not element_id:
            raise BrokerError("an element to sign has no ID")
        signature = xmlsec.template.create(
            element,
            xmlsec.constants.TransformExclC14N,
            xmlsec.constants.TransformRsaSha256,
            ns="ds",
        )
        after.addnext(signature)
        ref = xmlsec.template.add_reference(
            signature, xmlsec.constants.TransformSha256, uri=f"#{element_id}"
        )
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
        key_info = xmlsec.template.ensure_key_info(signature)
        xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
        xmlsec.tree.add_ids(element, ["ID"])
        ctx = xmlsec.SignatureContext()
        ctx.key = self._key
        try:
            ctx.sign(signature)
        except xmlsec.Error as exc:
            raise BrokerError("signing the assertion failed") from exc
