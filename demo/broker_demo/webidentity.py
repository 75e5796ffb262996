"""How the stand-in's STS checks an OIDC web identity token: issuer, signature (JWKS), expiry, audience, AWS claims.

The AWS claims (id_session-tags.md, id_credentials_temp_control-access_monitor.md):
`https://aws.amazon.com/tags` holds `principal_tags` ({key: [value]}) and `transitive_tag_keys`;
`https://aws.amazon.com/source_identity` holds the SourceIdentity. Both are checked by `limits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from broker_demo import limits
from broker_demo.iam import OidcProvider
from broker_demo.state import Registry, StsFault, issuer_key, oidc_provider_path

# STS accepts only asymmetric signatures: a shared-secret or unsigned token proves nothing.
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
)
_FETCH_FAILED = (
    "Couldn't retrieve verification key from your identity provider, "
    "please reference AssumeRoleWithWebIdentity documentation for requirements"
)
NOT_BEFORE_SKEW_SECONDS = 60
TAGS_CLAIM = "https://aws.amazon.com/tags"
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    provider: OidcProvider
    issuer: str
    subject: str
    audience: str
    source_identity: str | None
    claims: dict[str, Any]  # for the trust policy's condition keys (aud, sub, amr, azp)
    tags: limits.SessionTags = field(default_factory=limits.SessionTags)


def _invalid(message: str) -> StsFault:
    return StsFault("InvalidIdentityToken", message)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _session_tags(claim: object) -> limits.SessionTags:
    if claim is None:
        return limits.SessionTags()
    bad = StsFault("ValidationError", "Unable to validate tags: malformed tags claim")
    if not isinstance(claim, dict):
        raise bad
    principal_tags = claim.get("principal_tags", {})
    transitive = claim.get("transitive_tag_keys", [])
    if not isinstance(principal_tags, dict) or not isinstance(transitive, list):
        raise bad
    tags: list[tuple[str, list[str]]] = []
    for key, values in principal_tags.items():
        listed = values if isinstance(values, list) else [values]
        if not all(isinstance(v, str) for v in listed):
            raise bad
        tags.append((str(key), [str(v) for v in listed]))
    if not all(isinstance(k, str) for k in transitive):
        raise bad
    return limits.session_tags(tags, [str(k) for k in transitive])


class WebIdentityVerifier:
    """Checks tokens the way STS does; keeps one JWKS per issuer and refetches on an unknown kid."""

    def __init__(
        self,
        registry: Registry,
        *,
        partition: str,
        verify_signatures: bool,
        accept_any_issuer: bool,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._registry = registry
        self._partition = partition
        self._verify = verify_signatures
        self._accept_any_issuer = accept_any_issuer
        self._injected_client = http_client
        self._own_client: httpx.AsyncClient | None = None
        self._jwks: dict[str, list[dict[str, Any]]] = {}

    async def aclose(self) -> None:
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None

    def _client(self) -> httpx.AsyncClient:
        if self._injected_client is not None:
            return self._injected_client
        if self._own_client is None:
            self._own_client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        return self._own_client

    async def verify(self, token: str, *, account_id: str, now: datetime) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _invalid("The ID token provided is not a valid JSON Web Token") from exc
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise _invalid("The ID token has no issuer (iss) claim")
        provider = self._registry.oidc_provider(account_id, issuer)
        if provider is None and self._accept_any_issuer:
            provider = OidcProvider(
                arn=f"arn:{self._partition}:iam::{account_id}:oidc-provider/{oidc_provider_path(issuer)}",
                issuer=issuer,
                client_ids=(),
                account_id=account_id,
            )
        if provider is None:
            raise _invalid(f"No OpenIDConnect provider found in your account for {issuer}")
        if self._verify:
            await self._check_signature(token, header, issuer)
        return self._check_claims(claims, provider, now)

    def _check_claims(
        self, claims: dict[str, Any], provider: OidcProvider, now: datetime
    ) -> VerifiedToken:
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _invalid("The ID token has no numeric expiry (exp) claim")
        if exp <= now.timestamp():
            raise StsFault(
                "ExpiredTokenException",
                f"Token expired: current date/time {_iso(now.timestamp())} "
                f"must be before the expiration date/time {_iso(exp)}",
            )
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now.timestamp() + NOT_BEFORE_SKEW_SECONDS:
            raise _invalid("The ID token is not yet valid (nbf)")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _invalid("The ID token has no subject (sub) claim")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        audiences = [a for a in audiences if isinstance(a, str)]
        if provider.client_ids:
            matched = [a for a in audiences if a in provider.client_ids]
            if not matched:
                raise _invalid("Incorrect token audience")
            audience = matched[0]
        elif audiences:  # accept-any mode: nothing registered to compare with
            audience = audiences[0]
        else:
            raise _invalid("Incorrect token audience")
        source = claims.get(SOURCE_IDENTITY_CLAIM)
        if source is not None and not isinstance(source, str):
            raise _invalid("The source_identity claim must be a string")
        return VerifiedToken(
            provider=provider,
            issuer=provider.issuer,
            subject=subject,
            audience=audience,
            source_identity=limits.source_identity(source),
            claims=claims,
            tags=_session_tags(claims.get(TAGS_CLAIM)),
        )

    async def _check_signature(self, token: str, header: dict[str, Any], issuer: str) -> None:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise _invalid("The ID token is not signed with an algorithm STS accepts")
        kid = header.get("kid")
        key_id = issuer_key(issuer)
        keys = self._jwks.get(key_id)
        if keys is None or (kid is not None and not any(k.get("kid") == kid for k in keys)):
            keys = await self._fetch_jwks(issuer)
            self._jwks[key_id] = keys
        candidates = [
            k
            for k in keys
            if (kid is None or k.get("kid") == kid)
            and k.get("use", "sig") == "sig"
            and k.get("alg", alg) == alg
        ]
        if not candidates:
            raise _invalid("No key in the identity provider's JWKS matches the token")
        for jwk in candidates:
            try:
                key = jwt.PyJWK(jwk, algorithm=alg)
                jwt.decode(
                    token,
                    key=key.key,
                    algorithms=[alg],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
            except jwt.PyJWTError:
                continue
            return
        raise _invalid("The ID token's signature is invalid")

    async def _fetch_jwks(self, issuer: str) -> list[dict[str, Any]]:
        client = self._client()
        try:
            discovery = await client.get(f"{issuer_key(issuer)}/.well-known/openid-configuration")
            discovery.raise_for_status()
            jwks_uri = discovery.json()["jwks_uri"]
            if not isinstance(jwks_uri, str):
                raise TypeError("jwks_uri is not a string")
            response = await client.get(jwks_uri)
            response.raise_for_status()
            keys = response.json()["keys"]
            if not isinstance(keys, list):
                raise TypeError("keys is not a list")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise StsFault("IDPCommunicationError", _FETCH_FAILED) from exc
        return [k for k in keys if isinstance(k, dict)]
