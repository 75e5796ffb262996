"""SAML IdP metadata, checked before IAM or the broker relies on it: well-formed, signing certificates, expiry."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from broker.setup import SetupError
from broker.setup.certs import CertInfo
from broker.setup.fetch import get

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXPIRY_WARNING = timedelta(days=30)
# SAML Metadata §2.3.2: validUntil is when the metadata expires. Two weeks ahead leaves time
# to fetch the IdP's new document before the broker and IAM hold an expired one.
VALID_UNTIL_WARNING = timedelta(days=14)
MAX_METADATA_BYTES = 10_000_000  # IAM's SAMLMetadataDocument limit


@dataclass
class MetadataReport:
    entity_id: str | None = None
    certificates: list[CertInfo] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "signing_certificates": [c.to_json() for c in self.certificates],
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def load(source: str, *, timeout: float = 10.0, ca_file: str | None = None) -> bytes:
    """Read metadata from a file path or an https URL."""
    if urlsplit(source).scheme in ("http", "https"):
        return get(source, timeout=timeout, ca_file=ca_file, max_bytes=MAX_METADATA_BYTES)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise SetupError(f"cannot read metadata {source}: {exc.strerror}") from None


def check_metadata(xml: bytes, *, now: datetime) -> MetadataReport:
    report = MetadataReport()
    if b"<!DOCTYPE" in xml:
        # Entity declarations are how XML bombs and XXE arrive; SAML metadata never needs one.
        report.errors.append("metadata must not carry a DOCTYPE")
        return report
    # No DTDs, entities or network: metadata comes from outside and is parsed before it is trusted.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        report.errors.append(f"not well-formed XML: {exc.msg}")
        return report
    if root.tag != f"{{{MD}}}EntityDescriptor":
        report.errors.append(
            f"the root element must be md:EntityDescriptor (IAM takes one IdP), not {root.tag}"
        )
        return report
    report.entity_id = root.get("entityID")
    if not report.entity_id:
        report.errors.append("EntityDescriptor has no entityID")
    valid_until = root.get("validUntil")
    if valid_until:
        _check_valid_until(valid_until, now, report)
    idps = root.findall(f"{{{MD}}}IDPSSODescriptor")
    if not idps:
        report.errors.append("no IDPSSODescriptor: this is not an identity provider's metadata")
        return report
    for idp in idps:
        for kd in idp.findall(f"{{{MD}}}KeyDescriptor"):
            # SAML Metadata §2.4.1.1: a KeyDescriptor without `use` serves both signing and encryption.
            if kd.get("use", "signing") != "signing":
                continue
            for node in kd.iterfind(f".//{{{DS}}}X509Certificate"):
                _add_certificate(node.text or "", now, report)
    if not report.certificates and not any("certificate" in e for e in report.errors):
        report.errors.append(
            "no signing certificate (KeyDescriptor use=signing with ds:X509Certificate)"
        )
    return report


def _check_valid_until(value: str, now: datetime, report: MetadataReport) -> None:
    try:
        until = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        report.errors.append(f"validUntil {value!r} is not a dateTime")
        return
    if until.tzinfo is None or until <= now:
        report.errors.append(f"the metadata's validUntil {value} has passed")
    elif until - now < VALID_UNTIL_WARNING:
        days = (until - now).days
        report.warnings.append(
            f"the metadata's validUntil {value} is in {days} days: fetch it again from the IdP"
        )


def _add_certificate(text: str, now: datetime, report: MetadataReport) -> None:
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        cert = CertInfo.from_der(der)
    except (binascii.Error, ValueError):
        report.errors.append("a signing certificate is not a valid base64 X.509 certificate")
        return
    report.certificates.append(cert)
    if cert.not_after <= now:
        report.errors.append(
            f"signing certificate {cert.subject} expired {cert.not_after:%Y-%m-%d}"
        )
    elif cert.not_before > now:
        report.errors.append(
            f"signing certificate {cert.subject} is not valid until {cert.not_before:%Y-%m-%d}"
        )
    elif cert.not_after - now < EXPIRY_WARNING:
        days = (cert.not_after - now).days
        report.warnings.append(
            f"signing certificate {cert.subject} expires {cert.not_after:%Y-%m-%d} (in {days} days)"
        )
