"""Verify an OIDC JWT from a configured issuer and turn it into an Identity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from jwt.algorithms import get_default_algorithms

from broker.config import OidcIdp
from broker.errors import (
    AlgorithmNotAllowed,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    InvalidToken,
    TokenExpired,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownIssuer,
    UnsupportedCriticalHeader,
)
from broker.identity import Identity, WebIdentityToken
from broker.oidc import compact
from broker.oidc.jwks import JwksCache, SignInEndpoints
from broker.oidc.naming import oidc_session_name

# Only asymmetric algorithms: `none` and HMAC can never be configured (config.Algorithm),
# and this table is the second lock on that door.
_ALGORITHMS = {
    name: impl
    for name, impl in get_default_algorithms().items()
    if name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
}
# RFC 7515 §4.1.11: extensions we understand (none), so any `crit` is refused.
_UNDERSTOOD_CRIT: frozenset[str] = frozenset()
# datetime's last second (9999-12-31T23:59:59Z): an exp beyond it is no time at all.
_MAX_TIME = 253402300799


class OidcVerifier:
    def __init__(self, idps: Mapping[str, OidcIdp], keys: Mapping[str, JwksCache]) -> None:
        self._by_issuer: dict[str, list[tuple[str, OidcIdp]]] = {}
        for name, idp in idps.items():
            for iss in (idp.issuer, *idp.issuer_aliases):
                self._by_issuer.setdefault(iss, []).append((name, idp))
        self._keys = keys
        self._max_bytes = max((i.max_token_bytes for i in idps.values()), default=16 * 1024)

    async def sign_in_endpoints(self, idp: str) -> SignInEndpoints:
        """Where a browser sign-in at `idp` goes, from its discovery document."""
        return await self._keys[idp].sign_in_endpoints()

    async def verify(self, token: str, *, now: float, sign_in: str | None = None) -> Identity:
        """Check size, structure, issuer, algorithm, key, signature, then claims — in that
        order, so nothing is fetched for a token we could refuse offline.

        `sign_in`: the token is an ID token that the named IdP issued to the broker's own
        client for a person's browser sign-in: its audience must be that client ID (not the
        programs' `audiences`), and a program's token is no ID token of ours."""
        if len(token) > self._max_bytes:
            raise TokenTooLarge(f"The token is larger than {self._max_bytes} bytes.")
        jws = compact.parse(token)
        header, claims = jws.header, jws.claims
        issuer = claims.get("iss")
        candidates = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if not candidates:
            raise UnknownIssuer(
                "The token's issuer is not a configured identity provider.",
                log_detail=f"iss={str(issuer)[:200]!r}",
            )
        if sign_in is None:
            name, idp = _pick_by_audience(candidates, claims)
            token_types: Iterable[str] = idp.token_types
        else:
            name, idp = _sign_in_client(candidates, claims, sign_in)
            token_types = ("JWT",)  # OIDC Core §2: an ID token is a JWT
        if len(token) > idp.max_token_bytes:
            raise TokenTooLarge(f"The token is larger than {idp.max_token_bytes} bytes.")

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in idp.algorithms or alg not in _ALGORITHMS:
            raise AlgorithmNotAllowed(
                f"The token's algorithm is not allowed for this issuer (allowed: {', '.join(idp.algorithms)}).",
                log_detail=f"alg={str(alg)[:32]!r} idp={name}",
            )
        _check_type(header, token_types, name)
        crit = header.get("crit")
        if crit is not None and not _understood(crit):
            raise UnsupportedCriticalHeader(
                "The token has critical header extensions this broker does not understand."
            )
        if "cty" in header:
            # RFC 7519 §5.2: a content type announces a nested JWT; credentials are not nested.
            raise InvalidToken("The token is a nested or content-typed JWS, not a credential.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("The token's kid header is not a string.")

        key = await self._keys[name].key(kid, alg)
        if not _ALGORITHMS[alg].verify(jws.signing_input, key.key, jws.signature):
            raise InvalidSignature(
                "The token's signature does not verify.", log_detail=f"idp={name} kid={kid!r}"
            )

        expires_at = _check_times(claims, idp, now)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("The token has no subject (sub).")
        return Identity(
            protocol="oidc",
            idp=name,
            issuer=idp.issuer,
            subject=subject,
            attributes=claims,
            expires_at=expires_at,
            proof=WebIdentityToken(
                token,
                oidc_session_name(subject, claims, idp.session_name),
                expires_at if sign_in is not None else None,
            ),
        )


def _pick_by_audience(
    candidates: list[tuple[str, OidcIdp]], claims: Mapping[str, Any]
) -> tuple[str, OidcIdp]:
    """RFC 7519 §4.1.3: `aud` must contain one of our audiences."""
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    auds = [a for a in auds if isinstance(a, str)]
    for name, idp in candidates:
        if any(a in idp.audiences for a in auds):
            return name, idp
    raise InvalidAudience(
        "The token's audience is not one this broker accepts.",
        log_detail=f"aud={str(aud)[:200]!r}",
    )


def _sign_in_client(
    candidates: list[tuple[str, OidcIdp]], claims: Mapping[str, Any], sign_in: str
) -> tuple[str, OidcIdp]:
    """OIDC Core §3.1.3.7: the issuer is the IdP the sign-in went to (2), `aud` contains our
    client ID (3), several audiences need `azp` (4), and an `azp` is our client ID (5)."""
    found = next(((n, i) for n, i in candidates if n == sign_in), None)
    if found is None or not found[1].login or found[1].client_id is None:
        raise InvalidIssuer(
            "The ID token is not from the identity provider this sign-in went to.",
            log_detail=f"idp={sign_in}",
        )
    name, idp = found
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if idp.client_id not in auds:
        raise InvalidAudience(
            "The ID token was not issued to this broker.", log_detail=f"aud={str(aud)[:200]!r}"
        )
    azp = claims.get("azp")
    if (azp is None and len(auds) > 1) or (azp is not None and azp != idp.client_id):
        raise InvalidAudience(
            "The ID token was issued to another party (azp).",
            log_detail=f"azp={str(azp)[:200]!r} aud={str(aud)[:200]!r}",
        )
    return name, idp


def _check_times(claims: Mapping[str, Any], idp: OidcIdp, now: float) -> datetime:
    """RFC 7519 §4.1.4 to §4.1.6, each with the IdP's clock skew."""
    skew = idp.clock_skew_seconds
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or not 0 <= exp <= _MAX_TIME:
        raise InvalidToken("The token has no valid expiry (exp).")
    if now > exp + skew:
        raise TokenExpired("The token has expired.", log_detail=f"exp={exp} now={now:.0f}")
    nbf = claims.get("nbf")
    if nbf is not None:
        if not _is_number(nbf):
            raise InvalidToken("The token's nbf is not a number.")
        if now + skew < nbf:
            raise TokenNotYetValid("The token is not valid yet (nbf).", log_detail=f"nbf={nbf}")
    iat = claims.get("iat")
    if iat is not None:
        if not _is_number(iat):
            raise InvalidToken("The token's iat is not a number.")
        if now + skew < iat:
            raise TokenNotYetValid(
                "The token was issued in the future (iat).", log_detail=f"iat={iat}"
            )
    return datetime.fromtimestamp(exp, UTC)


def _media_type(typ: str) -> str:
    """RFC 7515 §4.1.9: compared case-insensitively, "application/" may be left out."""
    typ = typ.lower()
    return typ.removeprefix("application/")


def _check_type(header: Mapping[str, Any], allowed: Iterable[str], idp: str) -> None:
    """RFC 8725 §3.11: only the JWT types this IdP's credentials carry. A missing typ is a
    plain JWT (RFC 7519 §5.1), accepted where "JWT" is."""
    typ = header.get("typ", "JWT")
    wanted = {_media_type(t) for t in allowed}
    if not isinstance(typ, str) or _media_type(typ) not in wanted:
        raise InvalidToken(
            f"The token's type is not one this issuer's credentials carry ({', '.join(sorted(wanted))}).",
            log_detail=f"typ={str(typ)[:64]!r} idp={idp}",
        )


def _understood(crit: Any) -> bool:
    return (
        isinstance(crit, list)
        and bool(crit)
        and all(isinstance(c, str) and c in _UNDERSTOOD_CRIT for c in crit)
    )


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
