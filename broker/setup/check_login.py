"""`broker config check` for an OIDC IdP that signs people in: the client's secret or key, and
what the IdP's discovery document says about the authorization code flow the broker uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from broker.config import OidcIdp
from broker.errors import BrokerError, ConfigError
from broker.oidc.authcode import SignInClient
from broker.oidc.jwks import endpoints_from


class Report(Protocol):
    def error(self, where: str, message: str) -> None: ...

    def warning(self, where: str, message: str) -> None: ...

    def ok(self, where: str, message: str) -> None: ...


def check_login(
    name: str,
    idp: OidcIdp,
    base_url: str,
    report: Report,
    discovery: Mapping[str, Any] | None,
) -> None:
    """Offline (`discovery` None): the secret file or private key reads as the broker will
    read it at startup. Online: the endpoints, PKCE S256, the client's authentication method."""
    where = f"identity_providers.{name}"
    redirect = base_url.rstrip("/") + "/oidc/callback"
    try:
        client = SignInClient.from_config(name, idp, redirect)
    except ConfigError as exc:
        report.error(where, exc.detail)
        return
    if discovery is None:
        report.ok(where, f"sign-in client {idp.client_id}: register the redirect URI {redirect}")
        return
    try:
        endpoints_from(dict(discovery))
    except BrokerError as exc:
        report.error(where, f"{exc.detail} ({exc.log_detail}): nobody can sign in")
        return
    # RFC 8414 §2: a list the IdP publishes says what it supports; an absent one says nothing.
    _supports(
        where, discovery, "code_challenge_methods_supported", "S256", "PKCE S256", report, True
    )
    _supports(where, discovery, "response_types_supported", "code", "the code flow", report, True)
    _supports(
        where,
        discovery,
        "token_endpoint_auth_methods_supported",
        client.method,
        f"client authentication {client.method}",
        report,
        False,
    )
    if client.assertion_alg is not None:
        _supports(
            where,
            discovery,
            "token_endpoint_auth_signing_alg_values_supported",
            client.assertion_alg,
            f"client assertions signed {client.assertion_alg}",
            report,
            False,
        )
    missing = [s for s in idp.scopes if s not in discovery.get("scopes_supported", idp.scopes)]
    if missing:
        report.warning(where, f"the IdP does not list the scopes {missing}")
    report.ok(where, f"sign-in client {idp.client_id}: register the redirect URI {redirect}")


def _supports(
    where: str,
    discovery: Mapping[str, Any],
    key: str,
    wanted: str,
    what: str,
    report: Report,
    fatal: bool,
) -> None:
    values = discovery.get(key)
    if isinstance(values, list) and wanted not in values:
        message = f"the IdP does not list {what} in {key} ({values})"
        if fatal:
            report.error(where, message + ": sign-ins would fail")
        else:
            report.warning(where, message)
