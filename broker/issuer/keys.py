"""The issuer's signing keys: read once at startup, checked (RSA ≥ 2048, key matches certificate)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.config import SigningKey
from broker.errors import ConfigError

MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class Certificate:
    pem: bytes
    not_after: datetime
    subject: str

    @property
    def base64(self) -> str:
        """The DER certificate in base64, as ds:X509Certificate carries it."""
        der = x509.load_pem_x509_certificate(self.pem).public_bytes(serialization.Encoding.DER)
        return base64.b64encode(der).decode()


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The signing key (the first configured) and every certificate the metadata publishes."""

    signing_key_pem: bytes = field(repr=False)
    certificates: tuple[Certificate, ...]

    @property
    def signing_certificate(self) -> Certificate:
        return self.certificates[0]


def read_certificate(path: Path, where: str) -> tuple[Certificate, x509.Certificate]:
    try:
        pem = path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{where}: {path} is not a PEM certificate") from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise ConfigError(
            f"{where}: the certificate must hold an RSA key of at least {MIN_RSA_BITS} bits "
            "(the broker signs with RSA-SHA256)"
        )
    info = Certificate(pem, cert.not_valid_after_utc, cert.subject.rfc4514_string())
    return info, cert


def certificates(keys: Sequence[SigningKey]) -> tuple[Certificate, ...]:
    """Only the public halves: what the metadata publishes (no private key is read)."""
    return tuple(
        read_certificate(k.certificate_file, f"issuer.signing_keys[{i}].certificate_file")[0]
        for i, k in enumerate(keys)
    )


def load_keyring(keys: Sequence[SigningKey]) -> KeyRing:
    """Read the first key (the one that signs) and check that it is its certificate's key."""
    first = keys[0]
    where = "issuer.signing_keys[0].key_file"
    try:
        pem = first.key_file.read_bytes()
        private = serialization.load_pem_private_key(pem, password=None)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {first.key_file}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(
            f"{where}: {first.key_file} is not an unencrypted PEM private key"
        ) from None
    certs = certificates(keys)
    cert = x509.load_pem_x509_certificate(certs[0].pem)
    if not isinstance(private, rsa.RSAPrivateKey) or (
        private.public_key().public_numbers() != cert.public_key().public_numbers()  # type: ignore[union-attr]
    ):
        raise ConfigError(f"{where}: this key does not belong to certificate_file's certificate")
    return KeyRing(pem, certs)
