"""Issuer mode helpers: per-run signing keys, and two verifiers nobody here wrote (xmlsec1, pysaml2)."""

from __future__ import annotations

import base64
import subprocess
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.utils import CryptographyDeprecationWarning
from lxml import etree
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fakes.saml_idp import Keypair, make_keypair

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.response import AuthnResponse

AWS_SIGNIN = "https://signin.aws.amazon.com/saml"
AWS_AUDIENCE = "urn:amazon:webservices"
DS = "http://www.w3.org/2000/09/xmldsig#"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


def signing_keys(directory: Path, *names: str) -> list[Keypair]:
    """Fresh RSA-2048 keys with self-signed certificates, one per name (no key is committed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [make_keypair(directory, name) for name in names]


def issuer_section(keys: list[Keypair], **extra: Any) -> dict[str, Any]:
    return {
        "signing_keys": [
            {"key_file": str(k.key_file), "certificate_file": str(k.cert_file)} for k in keys
        ],
        **extra,
    }


def published_certificates(metadata: bytes) -> list[str]:
    """The PEM certificates a metadata document publishes for signing."""
    root = etree.fromstring(metadata)
    out = []
    for node in root.iter(f"{{{DS}}}X509Certificate"):
        body = "".join((node.text or "").split())
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        out.append(
            "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
        )
    return out


def xmlsec1_verifies(response_b64: str, cert_pem: str, tmp: Path) -> bool:
    """The xmlsec1 binary checks the Assertion's signature against one certificate only."""
    tmp.mkdir(parents=True, exist_ok=True)
    doc, cert = tmp / "response.xml", tmp / "cert.pem"
    doc.write_bytes(base64.b64decode(response_b64))
    cert.write_text(cert_pem)
    done = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--enabled-key-data",
            "rsa",  # the KeyInfo certificate is ignored: only --pubkey-cert-pem is trusted
            "--pubkey-cert-pem",
            str(cert),
            "--id-attr:ID",
            ASSERTION,
            str(doc),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def aws_as_pysaml2(metadata: bytes, tmp: Path) -> Saml2Client:
    """pysaml2 playing AWS's SAML service provider: its entity ID and ACS URL, trusting only
    the broker's published metadata."""
    tmp.mkdir(parents=True, exist_ok=True)
    meta = tmp / "broker-idp.xml"
    meta.write_bytes(metadata)
    conf = {
        "entityid": AWS_AUDIENCE,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(AWS_SIGNIN, BINDING_HTTP_POST)]},
                "allow_unsolicited": True,
                "want_assertions_signed": True,
                "want_response_signed": False,
            }
        },
        "metadata": {"local": [str(meta)]},
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "allow_unknown_attributes": True,
        "delete_tmpfiles": True,
    }
    return Saml2Client(config=SPConfig().load(conf))


def pysaml2_reads(client: Saml2Client, response_b64: str) -> AuthnResponse:
    response = client.parse_authn_request_response(response_b64, BINDING_HTTP_POST)
    assert isinstance(response, AuthnResponse)
    return response


class StsRecorder:
    """In front of the AWS stand-in: keeps every SAMLAssertion that reached STS, so a test can
    check what the broker signed (tags, SourceIdentity) with an independent verifier."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.assertions: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.assertions += parse_qs(body.decode()).get("SAMLAssertion", [])
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def saml_attributes(response_b64: str) -> dict[str, list[str]]:
    """The AWS attributes of a (verified) assertion, by their short names."""
    root = etree.fromstring(base64.b64decode(response_b64))
    out: dict[str, list[str]] = {}
    for attribute in root.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute"):
        name = (attribute.get("Name") or "").removeprefix("https://aws.amazon.com/SAML/Attributes/")
        out[name] = [v.text or "" for v in attribute]
    return out
