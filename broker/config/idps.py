"""Identity providers: OIDC issuers and SAML IdPs, each validated on its own."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from broker.aws.partitions import AWS_SAML_AUDIENCE, PARTITIONS
from broker.config.base import Strict, check_url

Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]


ClientAlgorithm = Literal["RS256", "PS256", "ES256"]
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _default_algorithms() -> list[Algorithm]:
    return ["RS256", "ES256"]


class PrivateKeyJwt(Strict):
    """RFC 7523 §2.2 client authentication: the broker signs a short JWT with this key."""

    key_file: Path  # a PEM private key (RSA for RS256/PS256, P-256 for ES256)
    kid: str | None = None  # the key's ID as registered at the IdP
    alg: ClientAlgorithm = "RS256"


class OidcIdp(Strict):
    type: Literal["oidc"]
    issuer: str
    # Other exact `iss` values this IdP's tokens carry, e.g. Google's "accounts.google.com"
    # (its ID tokens name either that or https://accounts.google.com). Discovery and keys
    # still come from `issuer`.
    issuer_aliases: list[str] = Field(default_factory=list, max_length=4)
    # The `aud` values programs' tokens carry. A login-only IdP (people, no programs) has none.
    audiences: list[str] = Field(default_factory=list)
    algorithms: list[Algorithm] = Field(default_factory=_default_algorithms, min_length=1)
    clock_skew_seconds: int = Field(60, ge=0, le=600)
    max_token_bytes: int = Field(16 * 1024, ge=512, le=256 * 1024)
    # Regular JWKS refresh, and the floor between refreshes forced by an unknown kid.
    jwks_refresh_seconds: float = Field(3600, ge=1)
    jwks_min_refresh_seconds: float = Field(30, ge=0)
    http_timeout_seconds: float = Field(5, gt=0, le=60)
    # RoleSessionName template over claims, e.g. "{email}" or "gh-{repository_owner}".
    # Default: the email claim, else sub.
    session_name: str | None = None
    # RFC 8725 §3.11: the JWT types (`typ`) this IdP's credentials carry. "JWT" also admits
    # a token without typ; a logout (logout+jwt) or access token (at+jwt) is no credential
    # unless listed.
    token_types: list[str] = Field(default_factory=lambda: ["JWT"], min_length=1)
    # Browser sign-in for people (authorization code + PKCE): the broker is this OIDC client.
    login: bool = False
    label: str | None = Field(None, min_length=1, max_length=80)
    client_id: str | None = Field(None, min_length=1, max_length=512)
    # Exactly one client authentication: a file holding the secret (client_secret_basic), or
    # a private key (private_key_jwt).
    client_secret_file: Path | None = None
    private_key_jwt: PrivateKeyJwt | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, v: object) -> object:
        return v.split() if isinstance(v, str) else v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        for s in v:
            if not _SCOPE.fullmatch(s):
                raise ValueError(f"{s!r} is not an OAuth scope token (RFC 6749 §3.3)")
        if "openid" not in v:
            raise ValueError("must include openid (an ID token is what signs people in)")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _login(self) -> OidcIdp:
        auths = [self.client_secret_file is not None, self.private_key_jwt is not None]
        if self.login:
            if self.client_id is None:
                raise ValueError("login: true needs client_id (the broker's client at the IdP)")
            if sum(auths) != 1:
                raise ValueError(
                    "login: true needs exactly one client authentication: "
                    "client_secret_file or private_key_jwt"
                )
        else:
            if not self.audiences:
                raise ValueError(
                    "audiences: set at least one (the aud of programs' tokens), "
                    "or login: true for a sign-in-only IdP"
                )
            extra = [k for k in ("client_secret_file", "private_key_jwt") if getattr(self, k)]
            if extra:
                raise ValueError(f"{extra[0]}: only used with login: true")
        return self

    def sts_audiences(self) -> list[str]:
        """The `aud` values STS sees from this IdP: programs' audiences, and with browser
        sign-in the broker's client ID (an ID token's audience, OIDC Core §2)."""
        extra = [self.client_id] if self.login and self.client_id else []
        return list(dict.fromkeys([*self.audiences, *extra]))

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        return check_url(v, "issuer")

    @field_validator("issuer_aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for alias in v:
            if not alias or len(alias) > 255 or not alias.isprintable() or " " in alias:
                raise ValueError(f"issuer_aliases: {alias!r} is not an issuer name")
        return v

    @model_validator(mode="after")
    def _alias_not_issuer(self) -> OidcIdp:
        if self.issuer in self.issuer_aliases:
            raise ValueError("issuer_aliases: repeats issuer")
        return self

    @field_validator("token_types")
    @classmethod
    def _token_types(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.fullmatch(r"[\w.+-]+(/[\w.+-]+)?", t, re.ASCII):
                raise ValueError(f"token_types: {t!r} is not a media type such as JWT or at+jwt")
        return v

    @field_validator("session_name")
    @classmethod
    def _session_name(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                list(string.Formatter().parse(v))
            except ValueError as exc:
                raise ValueError(f"session_name: bad template: {exc}") from None
        return v


class SamlIdp(Strict):
    type: Literal["saml"]
    metadata_file: Path | None = None
    metadata_url: str | None = None
    entity_id: str | None = None
    sso_url: str | None = None
    # Where people start a sign-in at this IdP (its portal), for an IdP that takes no
    # SP-initiated sign-in: shown when a session must go back through the IdP.
    portal_url: str | None = None
    certificates: list[str] = Field(default_factory=list)
    # Certificates (PEM or base64 DER) whose key signs the metadata document itself (a
    # federation's or the IdP's metadata-signing key). Set, the metadata must carry an
    # enveloped signature that one of them verifies, or the broker does not start.
    metadata_signing_certificates: list[str] = Field(default_factory=list)
    idp_initiated: bool = True
    audiences: list[str] = Field(
        default_factory=lambda: [AWS_SAML_AUDIENCE, PARTITIONS["aws"].saml_endpoint],
        min_length=1,
    )
    trust_assertion_roles: bool = True
    # Deprecated digests/signatures (SHA-1) are refused unless this is set for the IdP.
    allow_sha1: bool = False
    clock_skew_seconds: int = Field(60, ge=0, le=600)
    # The IdP sends PrincipalTag:* / SourceIdentity attributes: trust policies then need
    # sts:TagSession / sts:SetSourceIdentity (see `broker setup trust-policy`).
    session_tags: bool = False
    source_identity: bool = False

    @field_validator("portal_url")
    @classmethod
    def _portal(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, "portal_url")

    @field_validator("metadata_url")
    @classmethod
    def _metadata_url(cls, v: str | None) -> str | None:
        """The metadata names the signing certificates: fetched over plain http, anyone on the
        path could swap them. The issuers' rule (https, http on loopback only); a query is
        allowed (Entra ID's per-application metadata has one)."""
        if v is None:
            return None
        parts = urlsplit(v)
        check_url(urlunsplit(parts._replace(query="")), "metadata_url")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> SamlIdp:
        sources = [
            self.metadata_file is not None,
            self.metadata_url is not None,
            self.entity_id is not None,
        ]
        if sum(sources) != 1:
            raise ValueError(
                "set exactly one of metadata_file, metadata_url or entity_id (+ sso_url, certificates)"
            )
        if self.entity_id is not None and not self.certificates:
            raise ValueError("entity_id needs certificates")
        if self.entity_id is not None and self.metadata_signing_certificates:
            raise ValueError("metadata_signing_certificates needs metadata_file or metadata_url")
        return self
