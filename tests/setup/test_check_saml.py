"""`broker config check` on SAML metadata: validUntil, and the metadata's own signature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from broker.setup.check import check
from tests.fakes.pki import saml_metadata
from tests.fakes.saml_cases import SP
from tests.fakes.saml_idp import Keypair, TestIdp, make_keypair

NOW = datetime.now(UTC).replace(microsecond=0)
WHERE = "identity_providers.corp"


def write_config(tmp_path: Path, xml: bytes, **idp: Any) -> str:
    (tmp_path / "idp.xml").write_bytes(xml)
    doc = {
        "identity_providers": {
            "corp": {"type": "saml", "metadata_file": str(tmp_path / "idp.xml"), **idp}
        },
        "roles": {"admin": {"arn": "arn:aws:iam::111122223333:role/admin"}},
        "accounts": {"111122223333": {"name": "Production"}},
        "rules": [
            {"name": "r", "idp": "corp", "when": {"claim": "sub", "equals": "x"}, "grant": "admin"}
        ],
    }
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def findings(report: Any, level: str) -> list[str]:
    return [msg for lv, where, msg in report.findings if lv == level and where.startswith(WHERE)]


def valid_until(when: datetime) -> bytes:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return saml_metadata().replace(b"entityID=", f'validUntil="{stamp}" entityID='.encode(), 1)


def test_a_past_valid_until_is_an_error(tmp_path: Path) -> None:
    when = NOW - timedelta(hours=1)
    report = check(write_config(tmp_path, valid_until(when)), offline=True, now=NOW)
    assert not report.passed
    assert findings(report, "error") == [
        f"metadata: the metadata's validUntil {when:%Y-%m-%dT%H:%M:%SZ} has passed"
    ]


def test_a_valid_until_within_two_weeks_is_a_warning(tmp_path: Path) -> None:
    when = NOW + timedelta(days=13, hours=1)
    report = check(write_config(tmp_path, valid_until(when)), offline=True, now=NOW)
    assert report.passed
    assert findings(report, "warning") == [
        f"metadata: the metadata's validUntil {when:%Y-%m-%dT%H:%M:%SZ} is in 13 days: "
        "fetch it again from the IdP"
    ]


def test_a_valid_until_further_off_says_nothing(tmp_path: Path) -> None:
    report = check(
        write_config(tmp_path, valid_until(NOW + timedelta(days=15))), offline=True, now=NOW
    )
    assert (report.passed, findings(report, "warning")) == (True, [])


@dataclass(frozen=True)
class Keys:
    idp: TestIdp
    metadata: Keypair  # the federation's metadata-signing key
    other: Keypair


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("metadata")
    return Keys(
        TestIdp(d / "idp", acs_url=SP.acs_url),
        make_keypair(d, "metadata"),
        make_keypair(d, "other"),
    )


def test_metadata_signed_by_a_configured_key_passes(keys: Keys, tmp_path: Path) -> None:
    xml = keys.idp.signed_metadata(keys.metadata)
    path = write_config(tmp_path, xml, metadata_signing_certificates=[keys.metadata.cert_pem])
    report = check(path, offline=True, now=NOW)
    assert report.passed, report.findings
    assert "metadata signature verifies with metadata_signing_certificates" in findings(
        report, "ok"
    )


def _retitle(root: etree._Element) -> None:
    """An edit after signing: the signed document no longer matches its digest."""
    root.set("entityID", "https://attacker.example/idp")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other-key", "the signature does not verify with any metadata_signing_certificates"),
        ("unsigned", "the metadata is not signed (no ds:Signature on its root element)"),
        ("edited", "the signature does not verify with any metadata_signing_certificates"),
    ],
)
def test_metadata_whose_signature_fails_is_an_error(
    keys: Keys, tmp_path: Path, case: str, message: str
) -> None:
    xml = {
        "other-key": lambda: keys.idp.signed_metadata(keys.other),
        "unsigned": lambda: keys.idp.metadata().encode(),
        "edited": lambda: keys.idp.signed_metadata(keys.metadata, after_sign=_retitle),
    }[case]()
    path = write_config(tmp_path, xml, metadata_signing_certificates=[keys.metadata.cert_pem])
    report = check(path, offline=True, now=NOW)
    assert not report.passed
    errors = findings(report, "error")
    assert len(errors) == 1
    assert errors[0].startswith(f"metadata signature: {message}")


def test_a_bad_metadata_signing_certificate_is_named(keys: Keys, tmp_path: Path) -> None:
    xml = keys.idp.signed_metadata(keys.metadata)
    trust = ["not a certificate", keys.metadata.cert_b64]
    report = check(write_config(tmp_path, xml, metadata_signing_certificates=trust), offline=True)
    assert [(lv, w, m) for lv, w, m in report.findings if lv == "error"] == [
        (
            "error",
            f"{WHERE}.metadata_signing_certificates[0]",
            "not a PEM or base64 X.509 certificate",
        )
    ]
