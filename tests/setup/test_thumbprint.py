"""`broker thumbprint` against real TLS servers, checked against the openssl command line."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.cli import main
from broker.setup.thumbprint import probe_host, thumbprint
from tests.fakes.pki import HttpsServer, Pki, alternating, loopback, silent_server

pytestmark = pytest.mark.peers


def openssl_thumbprint(host: str, port: int, server_name: str) -> str:
    """The AWS IAM user guide's procedure: the last certificate s_client -showcerts prints."""
    shown = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"{host}:{port}",
            "-servername",
            server_name,
            "-showcerts",
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    ).stdout.decode()
    last = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", shown, re.S)[-1]
    out: str = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha1"],
        input=last.encode(),
        capture_output=True,
        timeout=20,
        check=True,
    ).stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def test_thumbprint_agrees_with_openssl(issuer: HttpsServer, pki: Pki) -> None:
    expected = openssl_thumbprint("127.0.0.1", issuer.port, "localhost")
    report = thumbprint(issuer.url(), ca_file=pki.root_file, resolver=loopback)
    assert report.ok, report.to_json()
    assert report.thumbprints == [expected]
    assert re.fullmatch(r"[0-9a-f]{40}", expected)
    # The top presented certificate is the intermediate: not the leaf, not the local root.
    (host,) = report.hosts
    (probe,) = host.probes
    assert [c.subject for c in probe.chain] == ["CN=localhost", "CN=Test A Intermediate CA"]
    assert expected not in {probe.chain[0].sha1, _sha1(pki.root.pem())}


def _sha1(pem: bytes) -> str:
    out: str = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha1"],
        input=pem,
        capture_output=True,
        check=True,
        timeout=20,
    ).stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def test_jwks_on_another_host_with_another_chain(pki: Pki, pki_b: Pki) -> None:
    with (
        HttpsServer(pki.server_context()) as idp,
        HttpsServer(pki_b.server_context(), host="127.0.0.2") as keys,
    ):
        jwks_uri = f"https://127.0.0.2:{keys.port}/jwks"
        idp.json("/.well-known/openid-configuration", {"issuer": idp.url(), "jwks_uri": jwks_uri})
        report = thumbprint(idp.url(), ca_file=pki.root_file, resolver=loopback)
        want_keys = openssl_thumbprint("127.0.0.2", keys.port, "127.0.0.2")
        want_idp = openssl_thumbprint("127.0.0.1", idp.port, "localhost")
    assert report.ok, report.to_json()
    assert [(h.host, h.role) for h in report.hosts] == [
        ("127.0.0.2", "jwks_uri"),
        ("localhost", "issuer"),
    ]
    assert report.thumbprints == [want_keys, want_idp]
    assert want_keys != want_idp


def test_leaf_only_chain_is_refused(pki: Pki, tmp_path: Path) -> None:
    # A client that completes the chain itself (as browsers do) still fetches the document.
    bundle = tmp_path / "completed.pem"
    bundle.write_bytes(pki.root.pem() + pki.intermediate.pem())
    with HttpsServer(pki.server_context(leaf_only=True)) as srv:
        srv.json(
            "/.well-known/openid-configuration", {"issuer": srv.url(), "jwks_uri": srv.url("/k")}
        )
        report = thumbprint(srv.url(), ca_file=str(bundle), resolver=loopback)
    assert report.errors == []
    assert not report.ok
    assert report.thumbprints == []
    (error,) = report.hosts[0].errors
    assert "presents only its own certificate" in error
    assert "intermediate" in error


def test_server_that_never_answers_times_out_cleanly() -> None:
    with silent_server() as port:
        report = thumbprint(f"https://localhost:{port}", timeout=0.5, resolver=loopback)
        probed = probe_host("localhost", port, "issuer", timeout=0.5, resolver=loopback, now=_now())
    assert report.errors == [
        f"https://localhost:{port}/.well-known/openid-configuration: timed out after 0.5s"
    ]
    assert probed.errors == ["localhost at 127.0.0.1: no TLS handshake within 0.5s"]


def _now() -> datetime:
    return datetime.now(UTC)


def test_addresses_that_disagree_are_reported(pki: Pki, pki_b: Pki) -> None:
    with HttpsServer(pki.server_context()) as a:  # noqa: SIM117 - b needs a's port
        with HttpsServer(pki_b.server_context(), host="127.0.0.2", port=a.port) as b:
            report = probe_host(
                "localhost",
                a.port,
                "jwks_uri",
                timeout=5,
                resolver=lambda h, p: ["127.0.0.1", "127.0.0.2"],
                now=_now(),
            )
            want = [
                openssl_thumbprint("127.0.0.1", a.port, "localhost"),
                openssl_thumbprint("127.0.0.2", b.port, "localhost"),
            ]
    assert report.thumbprints == want
    (warning,) = [w for w in report.warnings if "present different top certificates" in w]
    assert all(t in warning for t in want)


def test_redirect_to_another_host_is_not_followed(pki: Pki) -> None:
    with HttpsServer(pki.server_context()) as srv:
        srv.routes["/.well-known/openid-configuration"] = (
            302,
            {"Location": "https://evil.example/.well-known/openid-configuration"},
            b"",
        )
        report = thumbprint(srv.url(), ca_file=pki.root_file, resolver=loopback)
    (error,) = report.errors
    assert "redirects to https://evil.example/" in error
    assert "not followed" in error


def test_untrusted_discovery_document_is_not_fetched(issuer: HttpsServer) -> None:
    report = thumbprint(issuer.url(), resolver=loopback)
    (error,) = report.errors
    assert "not trusted" in error
    assert "--ca-file" in error


def test_http_issuer_is_refused() -> None:
    report = thumbprint("http://localhost:9/")
    assert report.errors == ["http://localhost:9: IAM requires an https URL"]


def test_cli_json(issuer: HttpsServer, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["thumbprint", issuer.url(), "--ca-file", pki.root_file, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["thumbprints"] == [openssl_thumbprint("127.0.0.1", issuer.port, "localhost")]
    assert "fallback" in out["note"]
    chain = out["hosts"][0]["probes"][0]["chain"]
    assert {"subject", "issuer", "not_after"} <= set(chain[0])


def test_cli_human_output_and_exit_status(pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    with HttpsServer(pki.server_context(leaf_only=True)) as srv:
        srv.json(
            "/.well-known/openid-configuration", {"issuer": srv.url(), "jwks_uri": srv.url("/k")}
        )
        code = main(["thumbprint", srv.url(), "--ca-file", pki.root_file])
    out = capsys.readouterr().out
    assert code == 1
    assert "presents only its own certificate" in out
    assert "CN=localhost" in out
    assert "optional" in out


def test_unverified_read_is_said_and_checked_through_a_verified_connection(
    issuer: HttpsServer, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 16: the chain is read with CERT_NONE; a verified connection must confirm it."""
    report = thumbprint(issuer.url(), ca_file=pki.root_file, resolver=loopback)
    (probe,) = report.hosts[0].probes
    assert probe.verified is True
    assert probe.verified_root == "CN=Test A Root CA"
    doc = report.to_json()["hosts"][0]["probes"][0]
    assert doc["read_without_verification"] is True
    assert doc["verified_chain_agrees"] is True

    assert main(["thumbprint", issuer.url(), "--ca-file", pki.root_file]) == 0
    out = capsys.readouterr().out
    assert "without certificate verification (CERT_NONE)" in out
    assert "verified connection agrees" in out


def test_a_verified_connection_that_sees_another_chain_is_a_warning(
    pki: Pki, tmp_path: Path
) -> None:
    bundle = tmp_path / "completed.pem"
    bundle.write_bytes(pki.root.pem() + pki.intermediate.pem())
    ctx = alternating(pki.server_context(), pki.server_context(leaf_only=True))
    with HttpsServer(ctx) as srv:
        report = probe_host(
            "localhost",
            srv.port,
            "issuer",
            timeout=5,
            resolver=loopback,
            now=_now(),
            ca_file=str(bundle),
        )
    (probe,) = report.probes
    assert probe.verified is False
    (warning,) = [w for w in report.warnings if "verified connection" in w]
    assert "another chain" in warning


def test_no_verified_connection_is_reported_not_hidden(issuer: HttpsServer, pki_b: Pki) -> None:
    report = probe_host(
        "localhost",
        issuer.port,
        "issuer",
        timeout=5,
        resolver=loopback,
        now=_now(),
        ca_file=pki_b.root_file,
    )
    (probe,) = report.probes
    assert probe.thumbprint is not None
    assert probe.verified is None
    assert probe.verify_error is not None
    assert "not trusted" in probe.verify_error
    assert any("no verified connection" in w for w in report.warnings)
