"""The certificate chain a TLS server presents: read unverified, as IAM takes it, then checked through a verified connection."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from broker.setup import SetupError
from broker.setup.fetch import tls_context


def _chain(tls: ssl.SSLSocket, which: str) -> tuple[bytes, ...]:
    # CPython 3.13 made SSLSocket.get_unverified_chain() / get_verified_chain() public;
    # 3.10-3.12 have them on the private _sslobj.
    public = getattr(tls, which, None)
    if public is not None:
        return tuple(public())
    private = getattr(getattr(tls, "_sslobj", None), which, None)
    if private is None:
        raise SetupError("this Python cannot report a server's certificate chain (need 3.10+)")
    return tuple(c.public_bytes(ssl._ssl.ENCODING_DER) for c in private() or ())  # type: ignore[attr-defined]


def presented_chain(address: str, port: int, server_name: str, timeout: float) -> tuple[bytes, ...]:
    """DER certificates in the order the server sent them, leaf first, read with CERT_NONE.

    getpeercert() gives only the leaf, and the verified chain ends at the local trust store's
    root; IAM wants what the server presents. Verification is off on purpose so the chain is
    captured even when this machine does not trust it: `verified_chain` then checks it.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return _chain(tls, "get_unverified_chain")


@dataclass(frozen=True)
class Verified:
    """What a verified connection (trust store or --ca-file, host name checked) saw."""

    presented: tuple[bytes, ...]  # as the server sent it on that connection
    path: tuple[bytes, ...]  # leaf to the trusted root, as this machine built it


def verified_chain(
    address: str, port: int, server_name: str, timeout: float, ca_file: str | None
) -> Verified:
    """Connect again with verification on; raises ssl.SSLError / OSError when it cannot."""
    ctx = tls_context(ca_file)
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return Verified(_chain(tls, "get_unverified_chain"), _chain(tls, "get_verified_chain"))
