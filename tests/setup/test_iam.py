"""`broker setup oidc-provider | saml-provider` against moto's IAM in server mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from broker.cli import main
from broker.setup.iam import validate_oidc, validate_saml
from tests.fakes.pki import saml_metadata

pytestmark = pytest.mark.peers

TP1 = "a" * 40
TP2 = "0123456789abcdef0123456789abcdef01234567"
ISSUER = "https://token.example.com"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def iam(endpoint: str) -> Any:
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")


def oidc(endpoint: str, *extra: str) -> list[str]:
    return ["setup", "oidc-provider", "--issuer", ISSUER, "--endpoint-url", endpoint, *extra]


def actions(doc: dict[str, Any]) -> list[str]:
    return [s["action"] for s in doc["steps"]]


def test_oidc_dry_run_changes_nothing(
    iam_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = run(
        capsys, *oidc(iam_endpoint, "--client-id", "sts.amazonaws.com", "--thumbprint", TP1)
    )
    assert code == 0
    assert actions(doc) == ["create"]
    assert doc["applied"] is False
    assert iam(iam_endpoint).list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_oidc_create_then_rerun_is_a_no_op(
    iam_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = oidc(
        iam_endpoint, "--client-id", "sts.amazonaws.com", "--thumbprint", TP1.upper(), "--apply"
    )
    code, doc = run(capsys, *argv)
    assert (code, actions(doc), doc["confirmed"]) == (0, ["create"], True)
    arn = doc["arn"]
    assert arn.endswith(":oidc-provider/token.example.com")
    got = iam(iam_endpoint).get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["ClientIDList"] == ["sts.amazonaws.com"]
    assert got["ThumbprintList"] == [TP1]

    code, again = run(capsys, *argv)
    assert (code, actions(again), again["arn"]) == (0, ["nothing to do"], arn)
    assert len(iam(iam_endpoint).list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1


def test_oidc_update_adds_client_ids_and_replaces_thumbprints(
    iam_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *oidc(iam_endpoint, "--client-id", "a", "old", "--thumbprint", TP1, "--apply"))
    argv = oidc(iam_endpoint, "--client-id", "a", "--client-id", "b", "--thumbprint", TP2, TP1)
    code, plan = run(capsys, *argv)
    assert code == 0
    assert plan["steps"] == [
        {"action": "add client ID", "detail": "b"},
        {"action": "replace thumbprints", "detail": f"{TP1} → {TP2}, {TP1}"},
    ]
    assert "left in place: old" in plan["notes"][0]
    code, done = run(capsys, *argv, "--apply")
    assert (code, done["confirmed"]) == (0, True)
    got = iam(iam_endpoint).get_open_id_connect_provider(OpenIDConnectProviderArn=done["arn"])
    assert sorted(got["ClientIDList"]) == ["a", "b", "old"]
    assert sorted(got["ThumbprintList"]) == sorted([TP1, TP2])
    assert actions(run(capsys, *argv, "--apply")[1]) == ["nothing to do"]


def test_oidc_without_thumbprint(iam_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(
        capsys, *oidc(iam_endpoint, "--client-id", "a", "--thumbprint", "none", "--apply")
    )
    assert (code, doc["confirmed"]) == (0, True)
    assert "none (IAM verifies against its trusted root CAs)" in doc["steps"][0]["detail"]
    code, again = run(capsys, *oidc(iam_endpoint, "--client-id", "a", "--thumbprint", "none"))
    assert actions(again) == ["nothing to do"]
    assert "thumbprints left as they are" in again["notes"][0]


LIMITS = [
    ("http", "http://token.example.com", ["a"], [TP1], "https://"),
    ("port", "https://token.example.com:8443", ["a"], [TP1], "port"),
    ("query", "https://token.example.com/?tenant=x", ["a"], [TP1], "query"),
    ("long-url", "https://" + "x" * 250 + ".com", ["a"], [TP1], "IAM allows 255"),
    ("six-thumbprints", ISSUER, ["a"], [f"{i:040x}" for i in range(6)], "IAM allows 5"),
    ("short-thumbprint", ISSUER, ["a"], ["abc"], "40 hex"),
    ("101-client-ids", ISSUER, [f"c{i}" for i in range(101)], [TP1], "IAM allows 100"),
    ("long-client-id", ISSUER, ["c" * 256], [TP1], "1 to 255"),
]


@pytest.mark.parametrize(
    ("name", "url", "ids", "tps", "message"), LIMITS, ids=[x[0] for x in LIMITS]
)
def test_oidc_limits_are_checked_before_any_iam_call(
    name: str,
    url: str,
    ids: list[str],
    tps: list[str],
    message: str,
    iam_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert any(message in e for e in validate_oidc(url, ids, tps))
    argv = ["setup", "oidc-provider", "--issuer", url, "--client-id", *ids, "--thumbprint", *tps]
    code = main([*argv, "--endpoint-url", iam_endpoint, "--apply"])
    assert code == 1
    assert message in capsys.readouterr().err
    assert iam(iam_endpoint).list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_oidc_client_id_total_over_limit(
    iam_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    iam(iam_endpoint).create_open_id_connect_provider(
        Url=ISSUER, ClientIDList=[f"c{i}" for i in range(99)], ThumbprintList=[TP1]
    )
    code, doc = run(
        capsys, *oidc(iam_endpoint, "--client-id", "x", "y", "--thumbprint", TP1, "--apply")
    )
    assert code == 1
    assert doc["applied"] is False
    assert "exceed IAM's 100" in doc["errors"][0]


def test_no_credentials_is_a_clear_error(
    moto_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(oidc(moto_server, "--client-id", "a", "--thumbprint", TP1))
    assert code == 1
    assert "no AWS credentials" in capsys.readouterr().err


# -- SAML ----------------------------------------------------------------------------------


def saml(endpoint: str, metadata: Path, *extra: str) -> list[str]:
    return [
        "setup",
        "saml-provider",
        "--name",
        "corp",
        "--metadata",
        str(metadata),
        "--endpoint-url",
        endpoint,
        *extra,
    ]


def test_saml_create_rerun_and_update(
    iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = tmp_path / "idp.xml"
    meta.write_bytes(saml_metadata())
    code, dry = run(capsys, *saml(iam_endpoint, meta))
    assert (code, actions(dry), dry["applied"]) == (0, ["create"], False)
    assert iam(iam_endpoint).list_saml_providers()["SAMLProviderList"] == []

    code, made = run(capsys, *saml(iam_endpoint, meta, "--apply"))
    assert (code, actions(made), made["confirmed"]) == (0, ["create"], True)
    assert made["arn"].endswith(":saml-provider/corp")
    assert made["metadata"]["entity_id"] == "https://idp.example.com/metadata"

    code, again = run(capsys, *saml(iam_endpoint, meta, "--apply"))
    assert (code, actions(again)) == (0, ["nothing to do"])

    meta.write_bytes(saml_metadata())  # rotated signing certificate
    code, updated = run(capsys, *saml(iam_endpoint, meta, "--apply"))
    assert (code, actions(updated), updated["confirmed"]) == (0, ["update metadata"], True)
    stored = iam(iam_endpoint).get_saml_provider(SAMLProviderArn=made["arn"])[
        "SAMLMetadataDocument"
    ]
    assert stored == meta.read_text()


BAD_METADATA = [
    ("malformed", b"<md:EntityDescriptor", "not well-formed"),
    ("no-signing-cert", saml_metadata(use="encryption"), "no signing certificate"),
    ("expired", saml_metadata(days=-1), "expired"),
    ("doctype", b'<!DOCTYPE x [<!ENTITY e "x">]>' + saml_metadata().split(b"?>", 1)[1], "DOCTYPE"),
    (
        "not-an-idp",
        b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>',
        "root element",
    ),
]


@pytest.mark.parametrize(("name", "xml", "message"), BAD_METADATA, ids=[x[0] for x in BAD_METADATA])
def test_saml_bad_metadata_is_refused(
    name: str,
    xml: bytes,
    message: str,
    iam_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    meta = tmp_path / "idp.xml"
    meta.write_bytes(xml)
    code, doc = run(capsys, *saml(iam_endpoint, meta, "--apply"))
    assert code == 1
    assert any(message in e for e in doc["metadata"]["errors"])
    assert iam(iam_endpoint).list_saml_providers()["SAMLProviderList"] == []


def test_saml_expiring_certificate_warns(
    iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = tmp_path / "idp.xml"
    meta.write_bytes(saml_metadata(days=10))
    code, doc = run(capsys, *saml(iam_endpoint, meta))
    assert code == 0
    assert "expires" in doc["metadata"]["warnings"][0]


def test_saml_limits(iam_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_saml("bad name!", "x" * 1000)
    assert validate_saml("ok", "x" * 999)
    assert validate_saml("n" * 129, "x" * 1000)
    assert not validate_saml("corp.idp-1_a", "x" * 1000)
    meta = tmp_path / "idp.xml"
    meta.write_bytes(saml_metadata())
    argv = saml(iam_endpoint, meta, "--apply")
    argv[argv.index("corp")] = "bad/name"
    assert main(argv) == 1
    assert "IAM allows 1 to 128" in capsys.readouterr().err
    assert iam(iam_endpoint).list_saml_providers()["SAMLProviderList"] == []
