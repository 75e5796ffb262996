"""The broker's IdP metadata: what `aws iam create-saml-provider` registers for issuer mode.

IAM CreateSAMLProvider takes the IdP's metadata document: "the issuer's name, expiration
information, and keys that can be used to validate the SAML authentication response". SAML
Metadata §2.4.3 gives an IDPSSODescriptor at least one SingleSignOnService; AWS never sends an
AuthnRequest (the broker posts to STS itself), so it names the broker's own sign-in page.
Every configured certificate is published for signing: a rotation publishes the next key
before it signs.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from broker.config import Config
from broker.errors import ConfigError
from broker.issuer.keys import Certificate, certificates

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def idp_metadata(entity_id: str, certificates: Sequence[Certificate], sign_in_url: str) -> bytes:
    root = etree.Element(f"{{{MD}}}EntityDescriptor", {"entityID": entity_id}, nsmap={"md": MD})
    idp = etree.SubElement(
        root,
        f"{{{MD}}}IDPSSODescriptor",
        {"protocolSupportEnumeration": PROTOCOL, "WantAuthnRequestsSigned": "false"},
    )
    for cert in certificates:
        descriptor = etree.SubElement(idp, f"{{{MD}}}KeyDescriptor", {"use": "signing"})
        info = etree.SubElement(descriptor, f"{{{DS}}}KeyInfo", nsmap={"ds": DS})
        data = etree.SubElement(info, f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = cert.base64
    etree.SubElement(idp, f"{{{MD}}}NameIDFormat").text = PERSISTENT
    etree.SubElement(
        idp, f"{{{MD}}}SingleSignOnService", {"Binding": REDIRECT, "Location": sign_in_url}
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def broker_metadata(config: Config) -> bytes:
    """From the config alone: the certificate files are read, never a private key."""
    if config.issuer is None:
        raise ConfigError("issuer metadata needs an issuer section in the configuration")
    base = config.server.base_url
    return idp_metadata(
        config.issuer.entity(base), certificates(config.issuer.signing_keys), base + "/"
    )
