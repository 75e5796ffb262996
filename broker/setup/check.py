"""`broker config check`: the file itself, then (unless offline) each IdP's discovery, keys and metadata (check_saml.py)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from broker.config import Config, GrantTemplate, OidcIdp, SamlIdp, parse_config
from broker.errors import ConfigError
from broker.matchers import ClaimTest, Combine, Matcher, Not
from broker.setup import SetupError
from broker.setup.certs import CertInfo
from broker.setup.check_login import check_login
from broker.setup.check_saml import check_saml, expiry
from broker.setup.fetch import get_json
from broker.setup.issuer import bypass_findings
from broker.setup.review import review, unnamed_accounts
from broker.setup.samples import check_samples
from broker.setup.thumbprint import endpoint
from broker.setup.tlschain import presented_chain
from broker.setup.trust_policy import grants

# Key types each JWS algorithm needs (RFC 7518 §3, RFC 8037).
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


@dataclass
class CheckReport:
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # level, where, message

    def error(self, where: str, message: str) -> None:
        self.findings.append(("error", where, message))

    def warning(self, where: str, message: str) -> None:
        self.findings.append(("warning", where, message))

    def ok(self, where: str, message: str) -> None:
        self.findings.append(("ok", where, message))

    @property
    def passed(self) -> bool:
        return not any(level == "error" for level, _, _ in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.passed,
            "findings": [{"level": lv, "where": w, "message": m} for lv, w, m in self.findings],
        }


class _DuplicateKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a second IdP or role of the same name is a mistake."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int) and key in seen:
                self.duplicates.append(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def check(
    path: str,
    *,
    offline: bool,
    now: datetime | None = None,
    timeout: float = 5.0,
    ca_file: str | None = None,
    samples: Mapping[str, str] | None = None,
) -> CheckReport:
    now = now or datetime.now(UTC)
    report = CheckReport()
    config = _load(path, report)
    if config is None:
        return report
    report.ok(
        path,
        f"valid: {len(config.identity_providers)} IdPs, {len(config.roles)} roles, {len(config.rules)} rules",
    )
    _static(config, report)
    report.findings += [*review(config), *unnamed_accounts(config), *bypass_findings(config, now)]
    check_samples(config, samples or {}, report)
    for name, idp in config.identity_providers.items():
        where = f"identity_providers.{name}"
        try:
            if isinstance(idp, SamlIdp):
                check_saml(
                    idp, where, report, offline=offline, now=now, timeout=timeout, ca_file=ca_file
                )
                continue
            doc = None
            if not offline:
                doc = _oidc(idp, where, report, now=now, timeout=timeout, ca_file=ca_file)
            if idp.login:
                check_login(name, idp, config.server.base_url, report, doc)
        except SetupError as exc:
            report.error(where, exc.detail)
    return report


def _load(path: str, report: CheckReport) -> Config | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        report.error(path, f"cannot read: {exc.strerror}")
        return None
    loader = _DuplicateKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        report.error(path, f"not valid YAML: {exc}")
        return None
    finally:
        loader.dispose()
    for dup in loader.duplicates:
        report.error(path, dup)
    try:
        return parse_config(data, path)
    except ConfigError as exc:
        report.error(path, exc.detail)
        return None


def _static(config: Config, report: CheckReport) -> None:
    part = config.aws.partition
    issuers: dict[str, str] = {}
    for name, idp in config.identity_providers.items():
        if isinstance(idp, OidcIdp):
            if idp.issuer in issuers:
                report.error(
                    f"identity_providers.{name}",
                    f"same issuer as {issuers[idp.issuer]}: tokens are ambiguous",
                )
            issuers.setdefault(idp.issuer, name)
    arns: dict[str, str] = {}
    for name, role in config.roles.items():
        if role.arn in arns:
            report.warning(f"roles.{name}", f"same ARN as roles.{arns[role.arn]}")
        arns.setdefault(role.arn, name)
        if not any(grants(r, name, role.arn) for r in config.rules):
            report.warning(f"roles.{name}", "no rule grants this role")
    for i, rule in enumerate(config.rules):
        where = f"rules[{i}] ({rule.name})"
        for item in (*rule.grant, *rule.deny):
            if isinstance(item, GrantTemplate) and not item.arn.startswith(
                ("arn:{", f"arn:{part}:")
            ):
                report.error(
                    where, f"template {item.arn!r} is not in partition {part} (aws.partition)"
                )
        idps = (
            [config.identity_providers[rule.idp]]
            if rule.idp != "*"
            else list(config.identity_providers.values())
        )
        if rule.when is not None and all(_never(rule.when, idp, where, report) for idp in idps):
            report.error(where, "can never match: its `when` contradicts itself or the IdP")


def _never(m: Matcher, idp: OidcIdp | SamlIdp, where: str, report: CheckReport) -> bool:
    """A conservative test: True only when no identity from `idp` can satisfy `m`."""
    if isinstance(m, Not):
        return False
    if isinstance(m, Combine):
        results = [_never(c, idp, where, report) for c in m.children]
        if m.kind == "all":
            return any(results) or _contradicts(m.children)
        return all(results) if m.kind == "any" else False
    if m.op == "in" and not m.value:
        return True
    if isinstance(idp, OidcIdp) and m.each != "none" and m.op in ("equals", "in"):
        values = {str(v) for v in (m.value if isinstance(m.value, list) else [m.value])}
        if m.claim == "iss" and idp.issuer not in values:
            return True
        if m.claim == "aud" and not values & set(idp.sts_audiences()):
            report.warning(
                where,
                f"tests aud for {sorted(values)}, none of the IdP's audiences "
                f"{idp.sts_audiences()}",
            )
    return False


def _contradicts(children: tuple[Matcher, ...]) -> bool:
    tests = [c for c in children if isinstance(c, ClaimTest)]
    absent = {t.claim for t in tests if t.op == "exists" and not t.value}
    if any(
        t.claim in absent and not (t.op == "exists" and not t.value) and t.each != "none"
        for t in tests
    ):
        return True
    # sub and iss carry one value: two different equalities cannot both hold.
    for claim in ("sub", "iss"):
        wanted = {
            str(t.value)
            for t in tests
            if t.claim == claim and t.op == "equals" and t.each != "none" and t.case_sensitive
        }
        if len(wanted) > 1:
            return True
    return False


def _oidc(
    idp: OidcIdp,
    where: str,
    report: CheckReport,
    *,
    now: datetime,
    timeout: float,
    ca_file: str | None,
) -> dict[str, Any]:
    """The discovery document, once its keys and certificates are checked."""
    issuer = idp.issuer.rstrip("/")
    doc = get_json(f"{issuer}/.well-known/openid-configuration", timeout=timeout, ca_file=ca_file)
    if doc.get("issuer") != idp.issuer:
        # OpenID Connect Discovery §4.3: the issuer MUST be identical to the one configured.
        report.error(
            where,
            f"discovery names issuer {doc.get('issuer')!r}, config has {idp.issuer!r}; every token would be refused",
        )
    supported = doc.get("id_token_signing_alg_values_supported")
    if isinstance(supported, list) and not set(supported) & set(idp.algorithms):
        report.warning(
            where, f"the IdP signs with {supported}; algorithms allows only {idp.algorithms}"
        )
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        report.error(where, "the discovery document has no jwks_uri")
        return doc
    keys = get_json(jwks_uri, timeout=timeout, ca_file=ca_file).get("keys")
    if not isinstance(keys, list) or not keys:
        report.error(where, f"{jwks_uri} has no keys")
        return doc
    kty = {k.get("kty") for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"}
    usable = [a for a in idp.algorithms if KEY_TYPES[a[:2]] in kty]
    if not usable:
        report.error(
            where,
            f"no signing key in {jwks_uri} suits algorithms {idp.algorithms} (key types {sorted(map(str, kty))})",
        )
    for k in keys:
        x5c = k.get("x5c") if isinstance(k, dict) else None
        for j, b64 in enumerate(x5c if isinstance(x5c, list) else []):
            try:
                expiry(
                    CertInfo.from_der(base64.b64decode(b64)),
                    f"JWKS key {k.get('kid')} x5c[{j}]",
                    where,
                    now,
                    report,
                )
            except (binascii.Error, ValueError):
                report.warning(where, f"JWKS key {k.get('kid')}: x5c[{j}] is not a certificate")
    host, port = endpoint(issuer)
    try:
        chain = presented_chain(host, port, host, timeout)
    except OSError as exc:
        report.warning(where, f"could not read {host}'s TLS certificates: {exc}")
    else:
        for der in chain:
            expiry(CertInfo.from_der(der), "TLS certificate", where, now, report)
    report.ok(
        where,
        f"discovery and {len(keys)} key(s) fetched; algorithms usable: {', '.join(usable) or 'none'}",
    )
    return doc
