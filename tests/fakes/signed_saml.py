"""SAML responses for AWS, built and signed with xmlsec (an implementation independent of both python3-saml and the stand-in)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
ACS = "https://signin.aws.amazon.com/saml"
ATTR = "https://aws.amazon.com/SAML/Attributes/"
IDP_ISSUER = "https://idp.example.com/metadata"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


@dataclass(frozen=True)
class SigningIdp:
    key_pem: bytes = field(repr=False)
    cert_pem: str

    def metadata(self, entity_id: str = IDP_ISSUER, *extra_certs: str) -> str:
        """IdP metadata with this signing certificate (and any others given)."""
        descriptors = "".join(
            f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
            f"<ds:X509Data><ds:X509Certificate>{_der_b64(pem)}</ds:X509Certificate></ds:X509Data>"
            "</ds:KeyInfo></md:KeyDescriptor>"
            for pem in (*extra_certs, self.cert_pem)
        )
        return (
            f'<md:EntityDescriptor xmlns:md="{MD}" entityID="{entity_id}">'
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'{descriptors}<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            'Location="https://idp.example.com/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
        )


def _der_b64(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "CERTIFICATE" not in line)


def make_idp(name: str) -> SigningIdp:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningIdp(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode())


def find(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    assert found is not None, path
    return found


def sign(element: etree._Element, idp: SigningIdp) -> None:
    """Enveloped XML-DSig (RSA-SHA256, exc-c14n) placed right after the element's Issuer."""
    signature = xmlsec.template.create(
        element, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    find(element, f"{{{SAML}}}Issuer").addnext(signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{element.get('ID')}"
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    ctx = xmlsec.SignatureContext()
    ctx.register_id(element, "ID")
    key = xmlsec.Key.from_memory(idp.key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(idp.cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    ctx.key = key
    ctx.sign(signature)


def xs(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _attribute(name: str, values: list[str]) -> str:
    inner = "".join(f"<saml:AttributeValue>{value}</saml:AttributeValue>" for value in values)
    return f'<saml:Attribute Name="{name}">{inner}</saml:Attribute>'


def saml_response(
    idp: SigningIdp,
    *,
    roles: list[str],
    session_name: str | None = "alice@example.com",
    recipient: str = ACS,
    audience: str = "urn:amazon:webservices",
    issuer: str = IDP_ISSUER,
    subject: str = "alice-0001",
    subject_format: str = PERSISTENT,
    issued: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    session_not_on_or_after: datetime | None = None,
    source_identity: str | None = None,
    attributes: dict[str, list[str]] | None = None,
    sign_what: str | None = "assertion",
    before_signing: Callable[[etree._Element], None] | None = None,
    after_signing: Callable[[etree._Element], None] | None = None,
) -> str:
    """A base64 samlp:Response for AWS; `attributes` adds more (names relative to AWS's
    namespace, e.g. "PrincipalTag:team" or "SessionDuration")."""
    now = issued or datetime.now(UTC)
    until = xs(now + lifetime)
    extra = [(ATTR + "Role", roles)]
    if session_name is not None:
        extra.append((ATTR + "RoleSessionName", [session_name]))
    if source_identity is not None:
        extra.append((ATTR + "SourceIdentity", [source_identity]))
    extra += [(ATTR + name, values) for name, values in (attributes or {}).items()]
    attribute_xml = "".join(_attribute(name, values) for name, values in extra)
    session_end = (
        f' SessionNotOnOrAfter="{xs(session_not_on_or_after)}"' if session_not_on_or_after else ""
    )
    xml = f"""<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r{uuid.uuid4().hex}"
      Version="2.0" IssueInstant="{xs(now)}" Destination="{recipient}">
    <saml:Issuer>{issuer}</saml:Issuer>
    <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
    <saml:Assertion ID="_a{uuid.uuid4().hex}" Version="2.0" IssueInstant="{xs(now)}">
      <saml:Issuer>{issuer}</saml:Issuer>
      <saml:Subject>
        <saml:NameID Format="{subject_format}">{subject}</saml:NameID>
        <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
          <saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{recipient}"/>
        </saml:SubjectConfirmation>
      </saml:Subject>
      <saml:Conditions NotBefore="{xs(now - timedelta(minutes=1))}" NotOnOrAfter="{until}">
        <saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction>
      </saml:Conditions>
      <saml:AuthnStatement AuthnInstant="{xs(now)}"{session_end}>
        <saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext>
      </saml:AuthnStatement>
      <saml:AttributeStatement>{attribute_xml}</saml:AttributeStatement>
    </saml:Assertion>
    </samlp:Response>"""
    root = etree.fromstring(xml.encode())
    if before_signing is not None:
        before_signing(root)
    if sign_what == "assertion":
        sign(find(root, f"{{{SAML}}}Assertion"), idp)
    elif sign_what == "response":
        sign(root, idp)
    if after_signing is not None:
        after_signing(root)
    return base64.b64encode(etree.tostring(root)).decode()
