"""The stand-in's IAM: SAML providers (metadata, signing certificates), OIDC providers, roles and their trust.

What IAM checks when these are created is checked here too (a test that registers something
IAM would refuse gets a ValueError), with the limits from the IAM API reference (botocore's
`iam` model) and reference_iam-quotas.md.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from broker_demo.trustpolicy import PolicyError, TrustPolicy, parse_trust_policy

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
ACCOUNT = re.compile(r"\d{12}")
SAML_PROVIDER_NAME = re.compile(r"[\w.-]{1,128}", re.ASCII)  # SAMLProviderNameType
KEYS_PER_SAML_PROVIDER = 10  # reference_iam-quotas.md: "Keys per SAML provider"
CLIENT_IDS_PER_OIDC_PROVIDER = 100  # CreateOpenIDConnectProvider: ClientIDList
THUMBPRINTS_PER_OIDC_PROVIDER = 5  # CreateOpenIDConnectProvider: ThumbprintList
THUMBPRINT = re.compile(r"[0-9A-Fa-f]{40}")  # thumbprintType: hex SHA-1, always 40 characters
DEFAULT_MAX_SESSION = 3600  # CreateRole: MaxSessionDuration defaults to one hour
MAX_SESSION_RANGE = (3600, 43200)  # roleMaxSessionDurationType


@dataclass(frozen=True, slots=True)
class OidcProvider:
    arn: str
    issuer: str
    client_ids: tuple[str, ...]
    account_id: str
    thumbprints: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """IAM's name for the provider (issuer without scheme), which prefixes its condition keys."""
        return self.arn.partition(":oidc-provider/")[2]


@dataclass(frozen=True, slots=True)
class SamlProvider:
    arn: str
    name: str
    certificates_pem: tuple[str, ...] = field(repr=False)
    account_id: str
    # The metadata's entityID, when registered from metadata: the assertion's Issuer must match.
    entity_id: str | None = None


@dataclass(frozen=True, slots=True)
class Role:
    arn: str
    account_id: str
    max_session_duration: int
    trust_policy: TrustPolicy = field(repr=False)

    @property
    def trust_policy_document(self) -> dict[str, Any]:
        """The stored document, as `aws iam get-role` would show it."""
        return dict(self.trust_policy.document)


def check_account(account_id: str) -> None:
    if not ACCOUNT.fullmatch(account_id):
        raise ValueError("account_id must be 12 digits")


def oidc_provider(
    arn: str,
    issuer: str,
    client_ids: list[str] | tuple[str, ...],
    account_id: str,
    thumbprints: list[str] | tuple[str, ...] = (),
) -> OidcProvider:
    """CreateOpenIDConnectProvider's checks on the client ids and thumbprints."""
    if len(client_ids) > CLIENT_IDS_PER_OIDC_PROVIDER:
        raise ValueError(f"at most {CLIENT_IDS_PER_OIDC_PROVIDER} client ids per OIDC provider")
    if not all(1 <= len(c) <= 255 for c in client_ids):
        raise ValueError("a client id is 1 to 255 characters")
    if len(thumbprints) > THUMBPRINTS_PER_OIDC_PROVIDER:
        raise ValueError(f"at most {THUMBPRINTS_PER_OIDC_PROVIDER} thumbprints per OIDC provider")
    if not all(THUMBPRINT.fullmatch(t) for t in thumbprints):
        raise ValueError("a thumbprint is the 40-character hex SHA-1 of a certificate")
    if urlsplit(issuer).query:
        raise ValueError("an OIDC provider URL has no query")
    return OidcProvider(
        arn, issuer, tuple(client_ids), account_id, tuple(t.lower() for t in thumbprints)
    )


def _pem(der_b64: str) -> str:
    body = "\n".join(textwrap.wrap("".join(der_b64.split()), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def read_metadata(metadata: str | bytes) -> tuple[str, tuple[str, ...]]:
    """The entityID and every signing certificate of the IdP's metadata (KeyDescriptors with
    use="signing" or no use), as `aws iam create-saml-provider` reads them."""
    data = metadata.encode() if isinstance(metadata, str) else metadata
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError("Could not parse metadata") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise ValueError("Could not parse metadata: a DTD")
    if root.tag != f"{{{MD}}}EntityDescriptor" or not root.get("entityID"):
        raise ValueError("Could not parse metadata: not an EntityDescriptor with an entityID")
    certificates = []
    for descriptor in root.iterfind(f"{{{MD}}}IDPSSODescriptor/{{{MD}}}KeyDescriptor"):
        if descriptor.get("use", "signing") != "signing":
            continue
        for cert in descriptor.iterfind(f".//{{{DS}}}X509Certificate"):
            certificates.append(_pem(cert.text or ""))
    if not certificates:
        raise ValueError("Could not parse metadata: no IDPSSODescriptor signing certificate")
    return str(root.get("entityID")), tuple(dict.fromkeys(certificates))


def saml_provider(
    arn: str, name: str, certificates: tuple[str, ...], account_id: str, entity_id: str | None
) -> SamlProvider:
    if not SAML_PROVIDER_NAME.fullmatch(name):
        raise ValueError("SAML provider name must be 1-128 of [A-Za-z0-9_.-]")
    if not certificates:
        raise ValueError("a SAML provider needs at least one signing certificate")
    if len(certificates) > KEYS_PER_SAML_PROVIDER:
        raise ValueError(f"IAM keeps at most {KEYS_PER_SAML_PROVIDER} keys per SAML provider")
    return SamlProvider(arn, name, certificates, account_id, entity_id)


def role(
    arn: str, account_id: str, trust_policy: str | Mapping[str, Any], max_session_duration: int
) -> Role:
    """CreateRole's checks: MaxSessionDuration 3600-43200, a trust policy IAM would store."""
    low, high = MAX_SESSION_RANGE
    if not low <= max_session_duration <= high:
        raise ValueError(f"MaxSessionDuration is {low} to {high} seconds")
    try:
        policy = parse_trust_policy(trust_policy)
    except PolicyError as exc:
        raise ValueError(f"MalformedPolicyDocument: {exc}") from exc
    return Role(arn, account_id, max_session_duration, policy)
