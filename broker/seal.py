"""Authenticated encryption of store records: AES-256-GCM under keys derived from the session
secrets, bound to the record's key, opening across a secret rotation.

A sealed record is

    version (1) | key id (4) | nonce (12) | ciphertext and GCM tag (16)

The key and its id are both derived from one secret with HKDF-SHA256 (RFC 5869) under
different `info` labels, so the id says which secret sealed a record without revealing
anything about its key. The header and the caller's `context` (the store key, say) are the
associated data: a record copied to another key, or with its header edited, does not open.
Nonces are random (NIST SP 800-38D §8.2.2): fine far below 2**32 records per secret.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.errors import ConfigError, SessionExpired

VERSION = b"\x01"
KID_BYTES = 4
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(VERSION) + KID_BYTES + NONCE_BYTES
MIN_SECRET_BYTES = 16
_SALT = b"broker.seal"


def _derive(secret: bytes, label: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=label).derive(secret)


class Sealer:
    """`secrets[0]` seals; every secret in `secrets` opens (the others are being retired)."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ConfigError("sealing store records needs at least one session secret")
        self._keys: list[tuple[bytes, AESGCM]] = []
        seen: set[bytes] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"a session secret must be at least {MIN_SECRET_BYTES} bytes long"
                )
            if secret in seen:
                continue
            seen.add(secret)
            kid = _derive(secret, b"broker.seal.v1 key id", KID_BYTES)
            self._keys.append((kid, AESGCM(_derive(secret, b"broker.seal.v1 aes-256-gcm", 32))))

    def seal(self, plaintext: bytes, *, context: str | bytes) -> bytes:
        kid, aead = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        header = VERSION + kid + nonce
        return header + aead.encrypt(nonce, plaintext, _aad(header, context))

    def open(self, sealed: bytes, *, context: str | bytes) -> bytes:
        """The plaintext, or SessionExpired if the record was altered, moved to another
        context, or sealed under a secret that is no longer configured."""
        if len(sealed) < HEADER_BYTES + TAG_BYTES or sealed[:1] != VERSION:
            raise _unreadable("not a sealed record of this version")
        header, body = sealed[:HEADER_BYTES], sealed[HEADER_BYTES:]
        kid, nonce = header[1 : 1 + KID_BYTES], header[1 + KID_BYTES :]
        candidates = [aead for k, aead in self._keys if k == kid]
        if not candidates:
            raise _unreadable("sealed under a secret that is not configured")
        for aead in candidates:  # a 4-byte id may collide: try each key that carries it
            try:
                return aead.decrypt(nonce, body, _aad(header, context))
            except InvalidTag:
                continue
        raise _unreadable("authentication failed: altered, or moved from another key")


def _aad(header: bytes, context: str | bytes) -> bytes:
    return header + (context.encode() if isinstance(context, str) else context)


def _unreadable(why: str) -> SessionExpired:
    return SessionExpired(
        "Your session is no longer valid; sign in again.", log_detail=f"sealed record: {why}"
    )
