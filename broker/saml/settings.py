"""Per-IdP SAML service-provider settings, built once at startup from the configuration."""

from __future__ import annotations

import base64
import binascii
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.idp_metadata_parser import (
    OneLogin_Saml2_IdPMetadataParser,
)
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from broker.config import SamlIdp, ServerSettings
from broker.errors import ConfigError
from broker.saml.signed_metadata import UntrustedMetadata, verified_metadata

MAX_METADATA_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpEndpoints:
    """Our SP's identifiers, derived from server.base_url only (never from Host headers)."""

    entity_id: str
    acs_url: str


def sp_endpoints(server: ServerSettings) -> SpEndpoints:
    base = server.base_url.rstrip("/")
    return SpEndpoints(entity_id=base + "/saml/metadata", acs_url=base + "/saml/acs")


@dataclass(frozen=True, slots=True)
class SamlIdpRuntime:
    """One configured SAML IdP, resolved: entity ID, SSO URL, signing certificates and the
    python3-saml settings objects (one per accepted Audience, since the library insists the
    SP entity ID be among the assertion's audiences)."""

    name: str
    config: SamlIdp
    entity_id: str
    sso_url: str | None
    certificates: tuple[bytes, ...]  # DER, in configuration order
    by_audience: Mapping[str, Any] = field(repr=False)  # audience -> OneLogin_Saml2_Settings


def _der(cert: str, where: str) -> bytes:
    text = cert.strip()
    if "-----BEGIN" in text:
        try:
            return x509.load_pem_x509_certificate(text.encode()).public_bytes(Encoding.DER)
        except ValueError as exc:
            raise ConfigError(f"{where}: not a PEM certificate: {exc}") from None
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: not a PEM or base64 DER certificate: {exc}") from None
    return der


def _pem(der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _settings(
    idp: SamlIdp,
    entity_id: str,
    sso_url: str,
    certs: tuple[bytes, ...],
    audience: str,
    sp: SpEndpoints,
) -> Any:
    """python3-saml settings with the secure values pinned here, never taken from config."""
    data = {
        "strict": True,
        "debug": False,
        "sp": {
            # The library compares the SP entity ID with the Audience; behind a broker the
            # Audience is what AWS expects, so each accepted audience gets its own settings.
            "entityId": audience,
            "assertionConsumerService": {"url": sp.acs_url, "binding": C.BINDING_HTTP_POST},
            "NameIDFormat": C.NAMEID_UNSPECIFIED,
        },
        "idp": {
            "entityId": entity_id,
            "singleSignOnService": {"url": sso_url, "binding": C.BINDING_HTTP_REDIRECT},
            "x509certMulti": {"signing": [_pem(d) for d in certs]},
        },
        "security": {
            # verify.py requires a signature covering the assertion: either the assertion's
            # own or the Response's; the library can only demand one specific shape.
            "wantAssertionsSigned": False,
            "wantMessagesSigned": False,
            "wantAssertionsEncrypted": False,
            "wantNameIdEncrypted": False,
            "wantNameId": True,
            "wantAttributeStatement": True,
            "rejectDeprecatedAlgorithm": not idp.allow_sha1,
            "requestedAuthnContext": False,
            "allowRepeatAttributeName": True,
            "allowSingleLabelDomains": True,
        },
    }
    settings = OneLogin_Saml2_Settings(data, sp_validation_only=False)
    if settings.get_errors():  # the constructor raises on errors; belt and braces
        raise ConfigError(f"SAML settings for {entity_id}: {settings.get_errors()}")
    return settings


async def _metadata(name: str, idp: SamlIdp, http: httpx.AsyncClient) -> dict[str, Any]:
    where = f"identity_providers.{name}"
    if idp.metadata_file is not None:
        try:
            xml = await anyio.Path(idp.metadata_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}.metadata_file: cannot read: {exc.strerror}") from None
    else:
        assert idp.metadata_url is not None
        try:
            resp = await http.get(idp.metadata_url, follow_redirects=False, timeout=10)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise ConfigError(f"{where}.metadata_url: cannot fetch: {exc}") from None
        xml = resp.content
    if len(xml) > MAX_METADATA_BYTES:
        raise ConfigError(f"{where}: metadata is larger than {MAX_METADATA_BYTES} bytes")
    document: bytes | etree._Element = xml
    if idp.metadata_signing_certificates:
        trusted = [
            _der(c, f"{where}.metadata_signing_certificates[{i}]")
            for i, c in enumerate(idp.metadata_signing_certificates)
        ]
        try:
            document = verified_metadata(xml, trusted, allow_sha1=idp.allow_sha1)
        except UntrustedMetadata as exc:
            raise ConfigError(f"{where}: metadata refused: {exc}") from None
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(document)
    except Exception as exc:  # library boundary: any parse failure is a config error
        raise ConfigError(f"{where}: unreadable IdP metadata: {type(exc).__name__}") from None
    data: dict[str, Any] = parsed.get("idp") or {}
    if not data.get("entityId"):
        raise ConfigError(f"{where}: metadata has no IDPSSODescriptor with an entityID")
    return data


async def load_idps(
    idps: Mapping[str, SamlIdp], sp: SpEndpoints, http: httpx.AsyncClient
) -> dict[str, SamlIdpRuntime]:
    """Resolve every SAML IdP once: read or fetch metadata, parse certificates, build settings."""
    out: dict[str, SamlIdpRuntime] = {}
    seen: dict[str, str] = {}
    for name, idp in idps.items():
        where = f"identity_providers.{name}"
        if idp.entity_id is not None:
            entity_id, sso_url = idp.entity_id, idp.sso_url
            certs = tuple(
                _der(c, f"{where}.certificates[{i}]") for i, c in enumerate(idp.certificates)
            )
        else:
            meta = await _metadata(name, idp, http)
            entity_id = meta["entityId"]
            sso_url = (meta.get("singleSignOnService") or {}).get("url") or idp.sso_url
            multi = (meta.get("x509certMulti") or {}).get("signing") or []
            raw = [meta["x509cert"]] if meta.get("x509cert") else list(multi)
            raw += idp.certificates
            certs = tuple(_der(c, f"{where} metadata certificate") for c in raw)
        if not certs:
            raise ConfigError(f"{where}: no signing certificate")
        if sso_url is None and not idp.idp_initiated:
            raise ConfigError(f"{where}: idp_initiated is false, so an sso_url is required")
        if entity_id in seen:
            raise ConfigError(f"{where}: entity ID {entity_id!r} is also used by {seen[entity_id]}")
        seen[entity_id] = name
        # python3-saml insists on an SSO URL even for IdP-initiated only; it never calls it.
        placeholder = sso_url or sp.acs_url
        by_audience = {
            aud: _settings(idp, entity_id, placeholder, certs, aud, sp) for aud in idp.audiences
        }
        out[name] = SamlIdpRuntime(name, idp, entity_id, sso_url, certs, by_audience)
    return out
