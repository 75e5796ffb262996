"""redis-server speaking only TLS, with an ACL user and the default user off; a CA per run."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.peers.redis_server import free_port, start_redis, stop, wait_for

USER = "broker"
# No more than the store needs, on its own keys only (as deploy/k8s/configmap.yaml says).
ACL = ("resetkeys", "~broker:*", "-@all", "+get", "+set", "+getdel", "+del", "+wait", "+ping")


@dataclass(frozen=True)
class TlsRedis:
    url: str
    ca_file: Path
    password_file: Path
    port: int


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca_and_server(workdir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("broker test CA"))
        .issuer_name(_name("broker test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_key(key))
    return ca_file, cert_file, key_file


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    workdir = tmp_path_factory.mktemp("redis-tls")
    ca_file, cert_file, key_file = make_ca_and_server(workdir)
    password = "pw-" + workdir.name  # per run; only ever in a file
    password_file = workdir / "password"
    password_file.write_text(password + "\n")
    port = free_port()
    proc = start_redis(
        workdir / "data",
        0,
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(cert_file),
        "--tls-key-file",
        str(key_file),
        "--tls-ca-cert-file",
        str(ca_file),
        "--tls-auth-clients",
        "no",
        "--user",
        "default",
        "off",
        "--user",
        USER,
        "on",
        f">{password}",
        *ACL,
    )

    def ready() -> bool:
        with redis.Redis(
            port=port,
            ssl=True,
            ssl_ca_certs=str(ca_file),
            username=USER,
            password=password,
            socket_timeout=1,
        ) as r:
            return bool(r.ping())

    try:
        wait_for(lambda: _quiet(ready), "redis-server (TLS)", procs=[proc], seconds=10)
        yield TlsRedis(f"rediss://127.0.0.1:{port}/0", ca_file, password_file, port)
    finally:
        stop([proc])


def _quiet(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (redis.RedisError, ssl.SSLError):
        return False
