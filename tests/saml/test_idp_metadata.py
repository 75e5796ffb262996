"""IdP metadata is where the signing certificates come from: fetched only over https (or on
loopback), and, with metadata_signing_certificates set, only if its own signature verifies.
Metadata is signed by pysaml2 + xmlsec1, an implementation nobody here wrote."""

from __future__ import annotations

import copy
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from broker.config import SamlIdp, parse_config
from broker.errors import ConfigError
from broker.saml.settings import SamlIdpRuntime, load_idps
from tests.fakes.pki import HttpsServer, Pki
from tests.fakes.saml_cases import SP
from tests.fakes.saml_idp import NS, SHA1, Keypair, TestIdp, make_keypair

DS = NS["ds"]
SIGNATURE = f"{{{DS}}}Signature"
CERT_IN_KEY_DESCRIPTOR = "md:IDPSSODescriptor/md:KeyDescriptor//ds:X509Certificate"

# ---- the URL rule, at config load ------------------------------------------------------------


def saml_config(**idp: Any) -> dict[str, Any]:
    return {"identity_providers": {"corp": {"type": "saml", **idp}}}


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.com/metadata",
        "http://10.1.2.3/metadata",
        "HTTP://idp.example.com/metadata",
        "ftp://idp.example.com/metadata",
        "file:///etc/idp.xml",
        "https://idp.example.com/metadata#frag",
        "idp.example.com/metadata",
    ],
)
def test_metadata_url_must_be_https(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(saml_config(metadata_url=url))
    assert "identity_providers.corp.metadata_url" in info.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.com/app/abc/sso/saml/metadata",
        # Entra ID publishes per-application metadata with a query string.
        "https://login.microsoftonline.com/tenant/federationmetadata/2007-06/federationmetadata.xml?appid=1234",
        "http://127.0.0.1:8081/metadata",
        "http://localhost/metadata",
    ],
)
def test_metadata_url_https_or_loopback(url: str) -> None:
    idp = parse_config(saml_config(metadata_url=url)).identity_providers["corp"]
    assert isinstance(idp, SamlIdp)
    assert idp.metadata_url == url


def test_metadata_signing_certificates_need_metadata(tmp_path: Path) -> None:
    key = make_keypair(tmp_path, "meta")
    with pytest.raises(ConfigError) as info:
        parse_config(
            saml_config(
                entity_id="https://idp.example.test/saml",
                certificates=[key.cert_pem],
                metadata_signing_certificates=[key.cert_pem],
            )
        )
    assert "metadata_signing_certificates" in info.value.detail


# ---- the metadata's own signature, at startup ----------------------------------------------


@dataclass(frozen=True)
class Keys:
    idp: TestIdp
    metadata: Keypair  # the federation's metadata-signing key
    other: Keypair


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("metadata")
    idp = TestIdp(d / "idp", acs_url=SP.acs_url)
    return Keys(idp, make_keypair(d, "metadata"), make_keypair(d, "other"))


async def load(xml: bytes, tmp_path: Path, trust: list[str] | None, **cfg: Any) -> SamlIdpRuntime:
    path = tmp_path / "idp-metadata.xml"
    path.write_bytes(xml)
    extra = {} if trust is None else {"metadata_signing_certificates": trust}
    conf = SamlIdp(type="saml", metadata_file=path, **extra, **cfg)
    async with httpx.AsyncClient() as http:
        runtimes = await load_idps({"corp": conf}, SP, http)
    return runtimes["corp"]


def _der(idp: TestIdp) -> bytes:
    import base64

    return base64.b64decode(idp.key.cert_b64)


Edit = Callable[[etree._Element], None]


def _find(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path, {"md": NS["md"], "ds": DS})
    assert found is not None, path
    return found


def swap_signing_certificate(other: Keypair) -> Edit:
    def edit(root: etree._Element) -> None:
        _find(root, CERT_IN_KEY_DESCRIPTOR).text = other.cert_b64

    return edit


def reference(uri: str) -> Edit:
    return lambda root: _find(root, "ds:Signature/ds:SignedInfo/ds:Reference").set("URI", uri)


def signature_into_descriptor(root: etree._Element) -> None:
    sig = _find(root, "ds:Signature")
    _find(root, "md:IDPSSODescriptor").insert(0, sig)


def second_signature(root: etree._Element) -> None:
    root.insert(1, copy.deepcopy(_find(root, "ds:Signature")))


def duplicate_id(root: etree._Element) -> None:
    _find(root, "md:IDPSSODescriptor").set("ID", root.get("ID") or "")


def xslt_transform(root: etree._Element) -> None:
    transforms = _find(root, "ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms")
    xslt = etree.SubElement(transforms, f"{{{DS}}}Transform")
    xslt.set("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")


def comment_in_certificate(root: etree._Element) -> None:
    """Exclusive c14n leaves comments out, so the signature still verifies; a parser that
    kept the comment would read the certificate cut short at it."""
    cert = _find(root, CERT_IN_KEY_DESCRIPTOR)
    text = cert.text or ""
    cert.text = text[:40]
    comment = etree.Comment(" note ")
    comment.tail = text[40:]
    cert.append(comment)


def wrap_in_aggregate(attacker: TestIdp) -> Callable[[bytes], bytes]:
    """The signed EntityDescriptor inside an unsigned EntitiesDescriptor, after another IdP's."""

    def build(signed: bytes) -> bytes:
        root = etree.Element(f"{{{NS['md']}}}EntitiesDescriptor", nsmap={"md": NS["md"]})
        root.append(etree.fromstring(attacker.metadata().encode()))
        root.append(etree.fromstring(signed))
        return etree.tostring(root)

    return build


def with_doctype(signed: bytes) -> bytes:
    body = signed.split(b"?>", 1)[1]
    return b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e "e">]>' + body


@dataclass(frozen=True)
class Case:
    name: str
    reason: str  # a fragment of the ConfigError's message
    signer: str | None = "metadata"  # None: unsigned
    trust: str = "metadata"
    sign: dict[str, Any] = field(default_factory=dict)
    after: Callable[[Keys], Edit] | None = None
    wrap: Callable[[Keys], Callable[[bytes], bytes]] | None = None
    config: dict[str, Any] = field(default_factory=dict)


REFUSED = [
    Case("unsigned", "not signed", signer=None),
    Case("signed_by_another_key", "does not verify", signer="other"),
    Case("signed_by_the_idp_key_not_the_metadata_key", "does not verify", signer="idp"),
    Case(
        "signing_certificate_swapped_after_signing",
        "does not verify",
        after=lambda k: swap_signing_certificate(k.other),
    ),
    Case("reference_to_another_id", "Reference", after=lambda k: reference("#elsewhere")),
    Case("reference_to_the_whole_document", "Reference", after=lambda k: reference("")),
    Case(
        "signature_moved_into_the_descriptor",
        "not signed",
        after=lambda k: signature_into_descriptor,
    ),
    Case("two_signatures", "one ds:Signature", after=lambda k: second_signature),
    Case("duplicate_id", "duplicate ID", after=lambda k: duplicate_id),
    Case("xslt_transform", "Transform", after=lambda k: xslt_transform),
    Case("sha1_without_allow_sha1", "algorithm", sign={"algorithms": SHA1}),
    Case(
        "signed_descriptor_wrapped_in_an_aggregate",
        "not signed",
        wrap=lambda k: wrap_in_aggregate(
            TestIdp(
                k.metadata.key_file.parent / "evil",
                acs_url=SP.acs_url,
                entity_id="https://evil.example.test/saml",
            )
        ),
    ),
    Case("doctype", "DOCTYPE", wrap=lambda k: with_doctype),
]


def build(keys: Keys, case: Case) -> tuple[bytes, list[str]]:
    signers = {"metadata": keys.metadata, "other": keys.other, "idp": keys.idp.key}
    after = case.after(keys) if case.after else None
    if case.signer is None:
        xml = keys.idp.metadata().encode()
    else:
        xml = keys.idp.signed_metadata(signers[case.signer], after_sign=after, **case.sign)
    if case.wrap is not None:
        xml = case.wrap(keys)(xml)
    return xml, [signers[case.trust].cert_pem]


@pytest.mark.anyio
@pytest.mark.parametrize("case", REFUSED, ids=attrgetter("name"))
async def test_refused_at_startup(keys: Keys, tmp_path: Path, case: Case) -> None:
    xml, trust = build(keys, case)
    with pytest.raises(ConfigError) as info:
        await load(xml, tmp_path, trust, **case.config)
    message = info.value.detail
    assert message.startswith("identity_providers.corp"), message
    assert case.reason in message, message


ACCEPTED = [
    Case("signed_by_the_metadata_key", ""),
    Case("sha1_with_allow_sha1", "", sign={"algorithms": SHA1}, config={"allow_sha1": True}),
    Case("comment_in_certificate_text", "", after=lambda k: comment_in_certificate),
]


@pytest.mark.anyio
@pytest.mark.parametrize("case", ACCEPTED, ids=attrgetter("name"))
async def test_accepted(keys: Keys, tmp_path: Path, case: Case) -> None:
    xml, trust = build(keys, case)
    runtime = await load(xml, tmp_path, trust, **case.config)
    assert runtime.entity_id == keys.idp.entity_id
    assert runtime.certificates == (_der(keys.idp),)


@pytest.mark.anyio
async def test_any_configured_certificate_may_verify(keys: Keys, tmp_path: Path) -> None:
    """A rollover: the old and the new metadata-signing certificates both configured."""
    xml = keys.idp.signed_metadata(keys.metadata)
    runtime = await load(xml, tmp_path, [keys.other.cert_pem, keys.metadata.cert_pem])
    assert runtime.certificates == (_der(keys.idp),)


@pytest.mark.anyio
async def test_without_a_metadata_certificate_nothing_changes(keys: Keys, tmp_path: Path) -> None:
    for xml in (keys.idp.metadata().encode(), keys.idp.signed_metadata(keys.other)):
        runtime = await load(xml, tmp_path, None)
        assert runtime.certificates == (_der(keys.idp),)


@pytest.mark.peers
@pytest.mark.anyio
async def test_signed_metadata_over_https(keys: Keys, tmp_path: Path) -> None:
    """The real fetch: metadata_url on an https server; what it serves must verify."""
    pki = Pki.create(tmp_path / "pki", "metadata")
    trust = ssl.create_default_context(cafile=pki.root_file)
    signed = keys.idp.signed_metadata(keys.metadata)
    tampered = keys.idp.signed_metadata(
        keys.metadata, after_sign=swap_signing_certificate(keys.other)
    )
    headers = {"Content-Type": "application/samlmetadata+xml"}
    with HttpsServer(pki.server_context()) as server:
        server.routes["/good"] = (200, headers, signed)
        server.routes["/tampered"] = (200, headers, tampered)
        async with httpx.AsyncClient(verify=trust) as http:
            for path, ok in (("/good", True), ("/tampered", False)):
                conf = SamlIdp(
                    type="saml",
                    metadata_url=server.url(path),
                    metadata_signing_certificates=[keys.metadata.cert_pem],
                )
                if ok:
                    runtimes = await load_idps({"corp": conf}, SP, http)
                    assert runtimes["corp"].certificates == (_der(keys.idp),)
                else:
                    with pytest.raises(ConfigError, match="does not verify"):
                        await load_idps({"corp": conf}, SP, http)
