"""`broker config check` for a SAML IdP: its certificates, its metadata, and the metadata's own signature."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broker.config import SamlIdp
from broker.saml.signed_metadata import UntrustedMetadata, verified_metadata
from broker.setup.certs import CertInfo
from broker.setup.metadata import check_metadata, load

if TYPE_CHECKING:
    from broker.setup.check import CheckReport

EXPIRY_WARNING = timedelta(days=30)


def expiry(cert: CertInfo, what: str, where: str, now: datetime, report: CheckReport) -> None:
    if cert.not_after <= now:
        report.error(where, f"{what} {cert.subject} expired {cert.not_after:%Y-%m-%d}")
    elif cert.not_after - now < EXPIRY_WARNING:
        report.warning(where, f"{what} {cert.subject} expires {cert.not_after:%Y-%m-%d}")


def _der(text: str) -> bytes | None:
    """A configured certificate, PEM or base64 DER, as DER; None when it is neither."""
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
        CertInfo.from_der(der)
    except (binascii.Error, ValueError):
        return None
    return der


def _certificates(
    texts: list[str], key: str, where: str, now: datetime, report: CheckReport
) -> list[bytes]:
    ders = []
    for i, text in enumerate(texts):
        der = _der(text)
        if der is None:
            report.error(f"{where}.{key}[{i}]", "not a PEM or base64 X.509 certificate")
            continue
        expiry(CertInfo.from_der(der), "certificate", f"{where}.{key}[{i}]", now, report)
        ders.append(der)
    return ders


def check_saml(
    idp: SamlIdp,
    where: str,
    report: CheckReport,
    *,
    offline: bool,
    now: datetime,
    timeout: float,
    ca_file: str | None,
) -> None:
    _certificates(idp.certificates, "certificates", where, now, report)
    trusted = _certificates(
        idp.metadata_signing_certificates, "metadata_signing_certificates", where, now, report
    )
    source = str(idp.metadata_file) if idp.metadata_file else idp.metadata_url
    if source is None or (offline and idp.metadata_url):
        return
    xml = load(source, timeout=timeout, ca_file=ca_file)
    if idp.metadata_signing_certificates:
        # What the broker does at startup (saml/settings.py): it refuses to start otherwise.
        try:
            verified_metadata(xml, trusted, allow_sha1=idp.allow_sha1)
        except UntrustedMetadata as exc:
            report.error(where, f"metadata signature: {exc}")
        else:
            report.ok(where, "metadata signature verifies with metadata_signing_certificates")
    meta = check_metadata(xml, now=now)
    for e in meta.errors:
        report.error(where, f"metadata: {e}")
    for w in meta.warnings:
        report.warning(where, f"metadata: {w}")
    if meta.ok:
        report.ok(
            where, f"metadata for {meta.entity_id}: {len(meta.certificates)} signing certificate(s)"
        )
