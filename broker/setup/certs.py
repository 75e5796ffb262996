"""A certificate as the setup commands show and compare it: subject, issuer, validity and
IAM's SHA-1 thumbprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha1: str
    der: bytes = field(repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> CertInfo:
        cert = x509.load_der_x509_certificate(der)
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            # IAM's thumbprint: hex SHA-1 of the DER certificate, 40 lowercase characters.
            sha1=hashlib.sha1(der, usedforsecurity=False).hexdigest(),
            der=der,
        )

    def to_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "sha1": self.sha1,
        }
