"""IAM OIDC thumbprints, taken from the certificate chain each server actually presents."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from broker.setup import SetupError
from broker.setup.certs import CertInfo
from broker.setup.fetch import FetchError, get_json
from broker.setup.tlschain import presented_chain, verified_chain

Resolver = Callable[[str, int], list[str]]
MAX_ADDRESSES = 8
EXPIRY_WARNING = timedelta(days=30)
IAM_NOTE = (
    "IAM now verifies many OIDC IdPs against its library of trusted root CAs; there the "
    "thumbprint is optional when creating the provider and is used only as a fallback."
)


@dataclass(frozen=True)
class Probe:
    address: str
    chain: tuple[CertInfo, ...] = ()  # read with CERT_NONE, as the server presents it
    error: str | None = None
    # A second, verified connection: True if it was presented the same chain, False if
    # another, None if none could be made (then verify_error says why).
    verified: bool | None = None
    verified_root: str | None = None
    verify_error: str | None = None

    @property
    def thumbprint(self) -> str | None:
        """AWS IAM user guide: the last certificate `openssl s_client -showcerts` shows."""
        return self.chain[-1].sha1 if len(self.chain) >= 2 else None


@dataclass
class HostReport:
    host: str
    port: int
    role: str  # "jwks_uri" or "issuer"
    probes: list[Probe] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def thumbprints(self) -> list[str]:
        return list(dict.fromkeys(p.thumbprint for p in self.probes if p.thumbprint))

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "role": self.role,
            "thumbprints": self.thumbprints,
            "probes": [
                {"address": p.address, "thumbprint": p.thumbprint, "error": p.error}
                | {"chain": [c.to_json() for c in p.chain], "read_without_verification": True}
                | {
                    "verified_chain_agrees": p.verified,
                    "verified_root": p.verified_root,
                    "verify_error": p.verify_error,
                }
                for p in self.probes
            ],
            "errors": self.errors,
            "warnings": self.warnings,
        }


@dataclass
class ThumbprintReport:
    issuer: str
    jwks_uri: str | None = None
    hosts: list[HostReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def thumbprints(self) -> list[str]:
        """The jwks_uri host's thumbprints first: that is the host IAM's guide names."""
        return list(dict.fromkeys(t for h in self.hosts for t in h.thumbprints))

    @property
    def ok(self) -> bool:
        return not self.errors and not any(h.errors for h in self.hosts) and bool(self.thumbprints)

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "thumbprints": self.thumbprints,
            "ok": self.ok,
            "hosts": [h.to_json() for h in self.hosts],
            "errors": self.errors,
            "warnings": self.warnings,
            "note": IAM_NOTE,
        }


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def probe_host(
    host: str,
    port: int,
    role: str,
    *,
    timeout: float,
    resolver: Resolver = resolve,
    now: datetime,
    ca_file: str | None = None,
) -> HostReport:
    """Probe every address `host` resolves to and compare what each presents."""
    report = HostReport(host, port, role)
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        report.errors.append(f"{host}: cannot resolve: {exc.strerror or exc}")
        return report
    if len(addresses) > MAX_ADDRESSES:
        report.warnings.append(
            f"{host} resolves to {len(addresses)} addresses; probed the first {MAX_ADDRESSES}"
        )
    for address in addresses[:MAX_ADDRESSES]:
        report.probes.append(_probe(address, host, port, timeout, ca_file))
    good = [p for p in report.probes if p.error is None]
    for p in report.probes:
        if p.error is not None:
            (report.warnings if good else report.errors).append(f"{host} at {p.address}: {p.error}")
    for p in good:
        _check_chain(p, host, report, now)
        _check_verified(p, host, report)
    if len(report.thumbprints) > 1:
        detail = ", ".join(f"{p.address} → {p.thumbprint}" for p in good if p.thumbprint)
        report.warnings.append(
            f"{host}'s addresses present different top certificates ({detail}); "
            "register every thumbprint (IAM allows 5) or find out why they differ"
        )
    return report


def _probe(address: str, host: str, port: int, timeout: float, ca_file: str | None) -> Probe:
    try:
        ders = presented_chain(address, port, host, timeout)
    except TimeoutError:
        return Probe(address, error=f"no TLS handshake within {timeout:g}s")
    except ssl.SSLError as exc:
        return Probe(address, error=f"TLS handshake failed: {exc.reason or exc}")
    except OSError as exc:
        return Probe(address, error=f"cannot connect: {exc.strerror or exc}")
    try:
        chain = tuple(CertInfo.from_der(d) for d in ders)
    except ValueError:
        return Probe(address, error="the server sent a certificate that does not parse")
    if not chain:
        return Probe(address, error="the server presented no certificate")
    try:
        seen = verified_chain(address, port, host, timeout, ca_file)
    except ssl.SSLCertVerificationError as exc:
        return Probe(address, chain, verify_error=f"not trusted here: {exc.verify_message}")
    except (OSError, ValueError) as exc:
        return Probe(address, chain, verify_error=str(exc) or type(exc).__name__)
    root = CertInfo.from_der(seen.path[-1]).subject if seen.path else None
    return Probe(address, chain, verified=seen.presented == ders, verified_root=root)


def _check_verified(p: Probe, host: str, report: HostReport) -> None:
    if p.verified is None:
        report.warnings.append(
            f"{host} at {p.address}: no verified connection ({p.verify_error}); the chain was "
            "read without verification, so confirm its thumbprint another way (or pass --ca-file)"
        )
    elif not p.verified:
        report.warnings.append(
            f"{host} at {p.address}: a verified connection was presented another chain than "
            "the unverified read; probe again or find out why the server varies"
        )


def _check_chain(p: Probe, host: str, report: HostReport, now: datetime) -> None:
    if len(p.chain) == 1:
        report.errors.append(
            f"{host} at {p.address} presents only its own certificate ({p.chain[0].subject}), "
            "no intermediate CA. IAM's thumbprint is the top certificate the server sends, so "
            "none is taken: configure the server to send its intermediate chain."
        )
    for a, b in zip(p.chain, p.chain[1:], strict=False):
        if a.issuer != b.subject:
            report.warnings.append(
                f"{host} at {p.address}: chain out of order: {a.subject} is not issued by {b.subject}"
            )
    for c in p.chain:
        if c.not_after <= now:
            report.errors.append(f"{host}: certificate {c.subject} expired {c.not_after:%Y-%m-%d}")
        elif c.not_after - now < EXPIRY_WARNING:
            report.warnings.append(
                f"{host}: certificate {c.subject} expires {c.not_after:%Y-%m-%d}"
            )


def endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise SetupError(f"{url}: IAM requires an https URL")
    return parts.hostname, parts.port or 443


def thumbprint(
    issuer: str,
    *,
    timeout: float = 5.0,
    ca_file: str | None = None,
    resolver: Resolver = resolve,
    now: datetime | None = None,
) -> ThumbprintReport:
    """Discover `issuer`'s jwks_uri and take the thumbprint of each host involved."""
    now = now or datetime.now(UTC)
    issuer = issuer.rstrip("/")
    report = ThumbprintReport(issuer)
    try:
        issuer_host = endpoint(issuer)
    except SetupError as exc:
        report.errors.append(exc.detail)
        return report
    try:
        doc = get_json(
            f"{issuer}/.well-known/openid-configuration", timeout=timeout, ca_file=ca_file
        )
    except FetchError as exc:
        report.errors.append(exc.detail)
        # Still show what the issuer presents: a missing intermediate is the usual reason.
        host, port = issuer_host
        report.hosts.append(
            probe_host(
                host, port, "issuer", timeout=timeout, resolver=resolver, now=now, ca_file=ca_file
            )
        )
        return report
    if str(doc.get("issuer", "")).rstrip("/") != issuer:
        report.warnings.append(
            f"the discovery document names issuer {doc.get('issuer')!r}; tokens will carry that, "
            f"not {issuer!r}"
        )
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        report.errors.append("the discovery document has no jwks_uri")
        return report
    report.jwks_uri = jwks_uri
    try:
        jwks_host = endpoint(jwks_uri)
    except SetupError as exc:
        report.errors.append(f"jwks_uri: {exc.detail}")
        return report
    targets: Sequence[tuple[tuple[str, int], str]] = [(jwks_host, "jwks_uri")]
    if issuer_host != jwks_host:
        targets = [*targets, (issuer_host, "issuer")]
    for (host, port), role in targets:
        report.hosts.append(
            probe_host(
                host, port, role, timeout=timeout, resolver=resolver, now=now, ca_file=ca_file
            )
        )
    if urlsplit(issuer).port is not None:
        report.warnings.append("IAM does not accept an issuer URL with a port")
    return report
