"""A test SAML IdP built on pysaml2 + the xmlsec1 binary: an implementation nobody here wrote.

Keys and certificates are generated per run with `cryptography` into a temporary directory.
Responses are built by pysaml2 unsigned, optionally edited (`before_sign`), signed by
pysaml2's xmlsec1 backend, then optionally tampered with (`after_sign`)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from lxml import etree

with warnings.catch_warnings():
    # pysaml2 names a cipher mode cryptography has moved; nothing here uses it.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml
    from saml2.config import IdPConfig
    from saml2.metadata import entity_descriptor
    from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS
    from saml2.server import Server
    from saml2.sigver import pre_signature_part
    from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS = {
    "md": MD,
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
AWS = "https://aws.amazon.com/SAML/Attributes/"
ROLE = AWS + "Role"
AUDIENCE = "urn:amazon:webservices"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Developer"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:saml-provider/TestIdP"
SHA1 = (SIG_RSA_SHA1, DIGEST_SHA1)
SHA256 = (SIG_RSA_SHA256, DIGEST_SHA256)

Edit = Callable[[etree._Element], None]


@dataclass(frozen=True)
class Keypair:
    key_file: Path
    cert_file: Path
    cert_pem: str

    @property
    def cert_b64(self) -> str:
        """The certificate as it appears in ds:X509Certificate (base64 DER, one line)."""
        return "".join(self.cert_pem.strip().splitlines()[1:-1])


def make_keypair(directory: Path, name: str) -> Keypair:
    """A fresh RSA-2048 key and self-signed certificate, written as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test idp {name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file.write_text(cert_pem)
    return Keypair(key_file, cert_file, cert_pem)


def _sp_metadata(entity_id: str, acs_url: str) -> str:
    return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"
      WantAssertionsSigned="true">
    <md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs_url}" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""


class TestIdp:
    """One pysaml2 IdP; `response()` returns the XML bytes of a SAML Response."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        directory: Path,
        *,
        acs_url: str,
        entity_id: str = "https://idp.example.test/saml",
        audience: str = AUDIENCE,
        sp_metadata: str | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.entity_id, self.acs_url, self.audience = entity_id, acs_url, audience
        self.key = make_keypair(directory, "idp")
        self.other_key = make_keypair(directory, "attacker")
        conf = {
            "entityid": entity_id,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(entity_id + "/sso", BINDING_HTTP_REDIRECT)],
                    },
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 5},
                            "name_form": NAME_FORMAT_URI,
                            "attribute_restrictions": None,
                        }
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                },
            },
            "key_file": str(self.key.key_file),
            "cert_file": str(self.key.cert_file),
            "xmlsec_binary": "/usr/bin/xmlsec1",
            # The IdP knows "AWS" (the audience) with the broker's ACS URL, and the broker's
            # own metadata for SP-initiated AuthnRequests.
            "metadata": {
                "inline": [_sp_metadata(audience, acs_url), *([sp_metadata] if sp_metadata else [])]
            },
            "allow_unknown_attributes": True,
            "delete_tmpfiles": True,
        }
        self.config = IdPConfig().load(conf)
        self.server = Server(config=self.config)
        self.sso_url = entity_id + "/sso"

    def metadata(self) -> str:
        """This IdP's metadata, as pysaml2 publishes it."""
        return str(entity_descriptor(self.config))

    def signed_metadata(
        self,
        signer: Keypair,
        *,
        algorithms: tuple[str, str] = SHA256,
        before_sign: Edit | None = None,
        after_sign: Edit | None = None,
    ) -> bytes:
        """This IdP's metadata with an enveloped signature over the EntityDescriptor, made by
        pysaml2's xmlsec1 backend with `signer`'s key (a federation's metadata-signing key)."""
        root = etree.fromstring(self.metadata().encode())
        ident = "_md" + base64.b32encode(os.urandom(10)).decode().lower()
        root.set("ID", ident)
        if before_sign is not None:
            before_sign(root)
        sign_alg, digest_alg = algorithms
        template = pre_signature_part(
            ident, signer.cert_b64, sign_alg=sign_alg, digest_alg=digest_alg
        )
        root.insert(0, etree.fromstring(template.to_string()))  # schema: Signature comes first
        xml = self.server.sec.sign_statement(
            etree.tostring(root).decode(),
            node_name=f"{MD}:EntityDescriptor",
            key_file=str(signer.key_file),
            node_id=ident,
        )
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
        if after_sign is not None:
            after_sign(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def request_id(self, redirect_url: str) -> str:
        """Parse an HTTP-Redirect AuthnRequest the way the IdP would; return its ID."""
        query = parse_qs(urlsplit(redirect_url).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        return str(request.message.id)

    def response(
        self,
        *,
        name_id: str = "alice@example.com",
        roles: Sequence[str] | None = None,
        attributes: Mapping[str, Sequence[str]] | None = None,
        in_response_to: str | None = None,
        sign_response: bool = True,
        sign_assertion: bool = True,
        algorithms: tuple[str, str] = SHA256,
        signer: Keypair | None = None,
        embed_cert: Keypair | None = None,
        before_sign: Edit | None = None,
        after_sign: Edit | None = None,
    ) -> bytes:
        identity: dict[str, Sequence[str]] = {
            ROLE: list(roles) if roles is not None else [f"{ROLE_ARN},{PROVIDER_ARN}"],
            AWS + "RoleSessionName": ["alice@example.com"],
        }
        identity.update(attributes or {})
        identity = {k: v for k, v in identity.items() if v}
        name = saml.NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id)
        unsigned = self.server.create_authn_response(
            identity=identity,
            in_response_to=in_response_to,
            destination=self.acs_url,
            sp_entity_id=self.audience,
            name_id=name,
            authn={"class_ref": saml.AUTHN_PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_response=False,
            sign_assertion=False,
        )
        root = etree.fromstring(str(unsigned).encode())
        if before_sign is not None:
            before_sign(root)
        signer = signer or self.key
        cert = (embed_cert or signer).cert_b64
        todo = []
        assertion = root.find("saml:Assertion", NS)
        if sign_assertion and assertion is not None:
            _insert_template(assertion, assertion.get("ID"), cert, algorithms)
            todo.append((saml.Assertion, assertion.get("ID")))
        if sign_response:
            _insert_template(root, root.get("ID"), cert, algorithms)
            todo.append((_Response, root.get("ID")))
        xml = etree.tostring(root).decode()
        for cls, node_id in todo:  # inner first: the Response digest covers the signed Assertion
            xml = self.server.sec.sign_statement(
                xml, node_name=_class_name(cls), key_file=str(signer.key_file), node_id=node_id
            )
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
        if after_sign is not None:
            after_sign(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def b64(self, **kwargs: Any) -> str:
        return encode(self.response(**kwargs))


def encode(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


class _Response:
    c_namespace = NS["samlp"]
    c_tag = "Response"


class _Tagged(Protocol):
    c_namespace: str
    c_tag: str


def _class_name(cls: _Tagged) -> str:
    return f"{cls.c_namespace}:{cls.c_tag}"


def _insert_template(
    element: etree._Element, ident: str | None, cert_b64: str, algorithms: tuple[str, str]
) -> None:
    """Add pysaml2's ds:Signature template right after the element's Issuer (schema order)."""
    sign_alg, digest_alg = algorithms
    template = pre_signature_part(ident, cert_b64, sign_alg=sign_alg, digest_alg=digest_alg)
    node = etree.fromstring(template.to_string())
    issuer = element.find("saml:Issuer", NS)
    index = 0 if issuer is None else list(element).index(issuer) + 1
    element.insert(index, node)
