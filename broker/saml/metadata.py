"""Our SAML service-provider metadata: entity ID and the HTTP-POST assertion consumer service."""

from __future__ import annotations

from lxml import etree

from broker.saml.settings import SpEndpoints

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"


def sp_metadata(sp: SpEndpoints) -> str:
    """SAML Metadata §2.4.4: an SPSSODescriptor that wants signed assertions, POST binding only.

    Built with lxml so every value is escaped; no validUntil, the document does not expire."""
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD})
    root.set("entityID", sp.entity_id)
    desc = etree.SubElement(root, f"{{{MD}}}SPSSODescriptor")
    desc.set("AuthnRequestsSigned", "false")
    desc.set("WantAssertionsSigned", "true")
    desc.set("protocolSupportEnumeration", PROTOCOL)
    etree.SubElement(desc, f"{{{MD}}}NameIDFormat").text = NAMEID_UNSPECIFIED
    acs = etree.SubElement(desc, f"{{{MD}}}AssertionConsumerService")
    acs.set("Binding", POST)
    acs.set("Location", sp.acs_url)
    acs.set("index", "0")
    acs.set("isDefault", "true")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()
