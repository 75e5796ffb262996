"""A per-run PKI, small HTTPS servers in threads, and IdP metadata signed with fresh keys."""

from __future__ import annotations

import base64
import itertools
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Routes = dict[str, tuple[int, dict[str, str], bytes]]


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    cn: str,
    signer: Issued | None = None,
    *,
    ca: bool,
    days: int = 365,
    sans: tuple[str, ...] = (),
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(signer.cert.subject if signer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for s in sans:
            try:
                names.append(x509.IPAddress(ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signer.key if signer else key, hashes.SHA256())
    return Issued(cert, key)


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued
    directory: Path

    @classmethod
    def create(cls, directory: Path, label: str) -> Pki:
        root = issue(f"{label} Root CA", ca=True, days=3650)
        inter = issue(f"{label} Intermediate CA", root, ca=True, days=1825)
        leaf = issue("localhost", inter, ca=False, sans=("localhost", "127.0.0.1", "127.0.0.2"))
        directory.mkdir(parents=True, exist_ok=True)
        pki = cls(root, inter, leaf, directory)
        (directory / "root.pem").write_bytes(root.pem())
        return pki

    @property
    def root_file(self) -> str:
        return str(self.directory / "root.pem")

    def server_context(self, *, leaf_only: bool = False) -> ssl.SSLContext:
        chain = self.leaf.pem() + (b"" if leaf_only else self.intermediate.pem())
        certfile = self.directory / ("leaf-only.pem" if leaf_only else "chain.pem")
        keyfile = self.directory / "leaf.key"
        certfile.write_bytes(chain)
        keyfile.write_bytes(
            self.leaf.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        return ctx

    def tls_files(self) -> tuple[Path, Path]:
        """(certificate chain, key) files for a server that takes paths, such as uvicorn."""
        self.server_context()
        return self.directory / "chain.pem", self.directory / "leaf.key"


def alternating(first: ssl.SSLContext, second: ssl.SSLContext) -> ssl.SSLContext:
    """A server context whose handshakes take turns: odd ones present `first`'s chain, even `second`'s.

    Only clients that send SNI reach the switch; the setup helper always does.
    """
    turns = itertools.count()

    def pick(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        sock.context = first if next(turns) % 2 == 0 else second

    first.sni_callback = pick
    return first


class _RoutingServer(ThreadingHTTPServer):
    """Answers GETs from a table of path → (status, headers, body)."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.routes: Routes = {}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, _RoutingServer)
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class HttpsServer:
    def __init__(self, ctx: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0) -> None:
        self.httpd = _RoutingServer((host, port))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def routes(self) -> Routes:
        return self.httpd.routes

    def json(self, path: str, doc: object) -> None:
        self.routes[path] = (200, {"Content-Type": "application/json"}, json.dumps(doc).encode())

    def url(self, path: str = "") -> str:
        return f"https://localhost:{self.port}{path}"

    def __enter__(self) -> HttpsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@contextmanager
def silent_server() -> Iterator[int]:
    """Accepts TCP connections (through the backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def loopback(host: str, port: int) -> list[str]:
    """Resolve names to 127.0.0.1 only (the test servers listen there, not on ::1); keep IPs."""
    try:
        return [str(ip_address(host))]
    except ValueError:
        return ["127.0.0.1"]


def saml_metadata(
    entity_id: str = "https://idp.example.com/metadata",
    *,
    days: int = 365,
    use: str | None = "signing",
    padding: int = 0,
) -> bytes:
    """IdP metadata with a fresh self-signed signing certificate valid for `days`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("IdP Signing"))
        .issuer_name(_name("IdP Signing"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    use_attr = f' use="{use}"' if use else ""
    note = f"<!-- {'x' * padding} -->" if padding else ""
    return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">{note}
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor{use_attr}>
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.example.com/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
""".encode()
