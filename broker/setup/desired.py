"""What a broker config implies in IAM, per account: identity providers and roles with their trust policies.

`setup export` renders it as code and `setup plan` compares it with the live account; both
take each role's trust policy from `trust_policy`, the generator `setup trust-policy` prints,
so the three can never disagree. Providers are a list of specs so that another kind (the
broker's own SAML provider in issuer mode) is one more spec, not another code path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from broker.config import ROLE_ARN, Config, GrantTemplate, OidcIdp, SamlIdp
from broker.issuer.metadata import broker_metadata
from broker.setup import SetupError
from broker.setup.iam import provider_path
from broker.setup.metadata import load
from broker.setup.trust_policy import trust_policy

MetadataLoader = Callable[[str], bytes]


@dataclass(frozen=True)
class SamlProviderSpec:
    idp: str  # the config's name for the IdP, also the IAM provider's name
    metadata: str = field(repr=False)
    source: str  # where the metadata came from, for the reader

    def arn(self, partition: str, account: str) -> str:
        return f"arn:{partition}:iam::{account}:saml-provider/{self.idp}"


@dataclass(frozen=True)
class OidcProviderSpec:
    idp: str
    url: str
    client_ids: tuple[str, ...]
    # None: IAM verifies the IdP against its trusted root CAs; no thumbprint is managed.
    thumbprints: tuple[str, ...] | None = None

    def arn(self, partition: str, account: str) -> str:
        return f"arn:{partition}:iam::{account}:oidc-provider/{provider_path(self.url)}"


ProviderSpec = SamlProviderSpec | OidcProviderSpec


@dataclass(frozen=True)
class RoleSpec:
    name: str  # the config's name
    arn: str
    max_session_seconds: int
    trust: dict[str, Any]
    providers: tuple[str, ...]  # the IdPs its trust policy names
    description: str | None = None

    @property
    def iam_name(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    @property
    def path(self) -> str:
        """IAM's role path: everything between `role` and the name, slash-delimited."""
        after = self.arn.split(":role/", 1)[1]
        return "/" + after.rsplit("/", 1)[0] + "/" if "/" in after else "/"


@dataclass
class AccountSpec:
    account: str
    partition: str
    label: str | None
    providers: list[ProviderSpec] = field(default_factory=list)
    roles: list[RoleSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _unfixed_account(config: Config) -> list[str]:
    """Rules whose grant templates leave the account open: IAM as code cannot name those roles."""
    out = []
    for rule in config.rules:
        for item in rule.grant:
            if isinstance(item, GrantTemplate) and "{" in item.arn.split(":")[4]:
                out.append(f"rule {rule.name} grants {item.arn}")
    return out


def desired(
    config: Config,
    *,
    account: str | None = None,
    allow_any_subject: bool = False,
    thumbprints: dict[str, tuple[str, ...]] | None = None,
    metadata: MetadataLoader | None = None,
) -> list[AccountSpec]:
    """Every account's providers and roles; raises SetupError before anything is written."""
    unfixed = _unfixed_account(config)
    if unfixed:
        raise SetupError(
            "cannot express these roles as IAM code: a templated role ARN with no fixed "
            "account can name a role in any account, and IAM code must name each role in "
            "its account:\n  " + "\n  ".join(unfixed) + "\nList the roles under `roles:` "
            "(with fixed ARNs) and grant them by name, or fix the account in the template"
        )
    accounts: dict[str, AccountSpec] = {}
    for name, role in config.roles.items():
        parts = ROLE_ARN.fullmatch(role.arn)
        assert parts is not None  # validated at load
        if account is not None and role.account_id != account:
            continue
        try:
            policy = trust_policy(config, name, allow_any_subject=allow_any_subject)
        except SetupError as exc:
            if "no rule grants" in exc.detail:
                continue  # the broker never assumes it: nothing to declare
            raise
        spec = accounts.setdefault(
            role.account_id,
            AccountSpec(role.account_id, parts["partition"], config.account_name(role.account_id)),
        )
        idps = [
            n
            for n in config.identity_providers
            if any(
                s["Principal"]["Federated"]
                == _provider_arn(config, n, parts["partition"], role.account_id)
                for s in policy.document["Statement"]
            )
        ]
        if config.via_of(role) == "issuer" and config.issuer is not None:
            idps.append(config.issuer.provider_name)  # the broker's own SAML provider
        spec.roles.append(
            RoleSpec(
                name,
                role.arn,
                role.max_session_seconds,
                policy.document,
                tuple(idps),
                role.description,
            )
        )
        spec.warnings += [f"role {name}: {w}" for w in policy.warnings]
    if account is not None and account not in accounts:
        raise SetupError(f"no role the broker assumes is in account {account}")
    load_metadata = metadata or _load_metadata
    for spec in accounts.values():
        used = list(dict.fromkeys(n for r in spec.roles for n in r.providers))
        spec.providers = [_provider(config, n, load_metadata, thumbprints or {}) for n in used]
    return [accounts[a] for a in sorted(accounts)]


def _provider_arn(config: Config, idp: str, partition: str, account: str) -> str:
    cfg = config.identity_providers[idp]
    if isinstance(cfg, SamlIdp):
        return f"arn:{partition}:iam::{account}:saml-provider/{idp}"
    return f"arn:{partition}:iam::{account}:oidc-provider/{provider_path(cfg.issuer)}"


def _provider(
    config: Config, idp: str, load_metadata: MetadataLoader, thumbprints: dict[str, tuple[str, ...]]
) -> ProviderSpec:
    if idp not in config.identity_providers:  # issuer mode: the broker's own IdP metadata
        return SamlProviderSpec(
            idp, broker_metadata(config).decode(), "the broker's issuer metadata"
        )
    cfg = config.identity_providers[idp]
    if isinstance(cfg, OidcIdp):
        return OidcProviderSpec(
            idp, cfg.issuer.rstrip("/"), tuple(cfg.sts_audiences()), thumbprints.get(idp)
        )
    if cfg.metadata_file is not None or cfg.metadata_url is not None:
        source = str(cfg.metadata_file or cfg.metadata_url)
        return SamlProviderSpec(idp, load_metadata(source).decode("utf-8"), source)
    return SamlProviderSpec(idp, synthesized_metadata(cfg), "entity_id, sso_url and certificates")


def _load_metadata(source: str) -> bytes:
    return load(source)


def synthesized_metadata(idp: SamlIdp) -> str:
    """SAML Metadata §2.4.3: an IDPSSODescriptor with the signing certificates the config lists."""
    assert idp.entity_id is not None
    keys = "".join(
        '\n    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        + "".join(line for line in c.splitlines() if not line.startswith("-----")).strip()
        + "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for c in idp.certificates
    )
    sso = (
        '\n    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
        f" Location={quoteattr(idp.sso_url)}/>"
        if idp.sso_url
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(idp.entity_id)}>\n'
        '  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys}{sso}\n  </md:IDPSSODescriptor>\n</md:EntityDescriptor>\n"
    )


def provenance(path: str) -> str:
    """Which config produced an export: its path and the SHA-256 of its bytes."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return f"{path} (sha256 {digest[:16]})"
