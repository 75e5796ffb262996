"""Discovery and JWKS per configured issuer: cached parsed keys, bounded refresh, rotation."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from broker.config import OidcIdp, check_url
from broker.errors import IdpUnavailable, UnknownSigningKey
from broker.oidc.fetch import TooLarge, json_answer

log = logging.getLogger(__name__)

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    key: PublicKey
    alg: str | None  # the JWK's own "alg", when it pins one

    def fits(self, alg: str) -> bool:
        """RFC 7518 §3: the key type must be the one the algorithm is defined for."""
        if self.alg is not None and self.alg != alg:
            return False
        if alg.startswith(("RS", "PS")):
            return isinstance(self.key, rsa.RSAPublicKey)
        if alg in _CURVES:
            return (
                isinstance(self.key, ec.EllipticCurvePublicKey)
                and self.key.curve.name == _CURVES[alg]
            )
        if alg == "EdDSA":
            return isinstance(self.key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
        return False


@dataclass(frozen=True, slots=True)
class SignInEndpoints:
    """Where a browser sign-in goes (OIDC Discovery §3), from the issuer's own document."""

    authorization_endpoint: str
    token_endpoint: str
    # RFC 9207 §3: the IdP names itself (`iss`) in every authorization response.
    iss_parameter: bool = False


class JwksCache:
    """Keys of one issuer. Fetched through the issuer's own discovery document only: a
    token's `jku`, `x5u` or embedded `jwk` never leads anywhere."""

    def __init__(
        self,
        idp: OidcIdp,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idp = idp
        self._http = http
        self._clock = clock
        self._keys: tuple[SigningKey, ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._failure: IdpUnavailable | None = None  # why the last attempt failed
        self._endpoints: SignInEndpoints | None = None
        self._endpoints_failure: IdpUnavailable | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # JWKS documents fetched, for /metrics and tests

    async def key(self, kid: str | None, alg: str) -> SigningKey:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._idp.jwks_refresh_seconds:
            await self._refresh()
        found = self._find(kid, alg)
        if found is None and await self._refresh():
            # An unknown kid may mean the IdP rotated: looked again, within the floor.
            found = self._find(kid, alg)
        if found is not None:
            return found
        if not self._keys or self._failure is not None:
            # No keys, or the last attempt to fetch them failed: an unknown kid may be a key
            # the IdP rotated in that we could not fetch. Unavailable (503), not a verdict.
            failure = self._failure
            raise IdpUnavailable(
                "The identity provider's signing keys are not available.",
                log_detail=failure.log_detail if failure else f"issuer={self._idp.issuer}",
                headers={"Retry-After": str(max(1, int(self._idp.jwks_min_refresh_seconds)))},
            )
        raise UnknownSigningKey(
            "The token is signed with a key the issuer does not publish.",
            log_detail=f"kid={kid!r} alg={alg} issuer={self._idp.issuer}",
        )

    async def sign_in_endpoints(self) -> SignInEndpoints:
        """The authorization and token endpoints, from the discovery document fetched with the
        keys (fetched now if never yet, within the same refresh floor)."""
        if self._endpoints is None:
            await self._refresh()
        if self._endpoints is None:
            failure = self._failure or self._endpoints_failure
            raise IdpUnavailable(
                "The identity provider's sign-in endpoints are not available.",
                log_detail=failure.log_detail if failure else f"issuer={self._idp.issuer}",
                headers={"Retry-After": str(max(1, int(self._idp.jwks_min_refresh_seconds)))},
            )
        return self._endpoints

    def _find(self, kid: str | None, alg: str) -> SigningKey | None:
        candidates = [k for k in self._keys if k.fits(alg)]
        if kid is None:
            # Without a kid, only an unambiguous key set will do.
            return candidates[0] if len(candidates) == 1 else None
        return next((k for k in candidates if k.kid == kid), None)

    async def _refresh(self) -> bool:
        """Fetch discovery and the JWKS, unless an attempt, successful or not, started less
        than `jwks_min_refresh_seconds` ago: while the IdP is down, requests use the keys we
        have (or fail fast) instead of each fetching again. True if the keys were refreshed."""
        started = self._attempted_at
        async with self._lock:
            if self._attempted_at != started:
                return self._failure is None  # another request tried while we waited
            now = self._clock()
            if (
                self._attempted_at is not None
                and now - self._attempted_at < self._idp.jwks_min_refresh_seconds
            ):
                return False
            self._attempted_at = now
            try:
                self._keys = await self._fetch()
            except IdpUnavailable as exc:
                self._failure = exc
                log.warning(
                    "jwks refresh failed for %s (%s); %s",
                    self._idp.issuer,
                    exc.log_detail,
                    "keeping the keys we have" if self._keys else "no keys yet",
                )
                return False
            self._fetched_at = now
            self._failure = None
            return True

    async def _fetch(self) -> tuple[SigningKey, ...]:
        issuer = self._idp.issuer
        discovery = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        # OIDC Discovery §4.3: the document's issuer must be exactly the one we asked.
        if discovery.get("issuer") != issuer:
            raise IdpUnavailable(
                "The identity provider's discovery document names another issuer.",
                log_detail=f"configured {issuer!r}, discovery says {discovery.get('issuer')!r}",
            )
        if self._idp.login:
            # People's sign-in needs these; programs' tokens do not, so keys still load.
            try:
                self._endpoints = endpoints_from(discovery)
                self._endpoints_failure = None
            except IdpUnavailable as exc:
                self._endpoints, self._endpoints_failure = None, exc
                log.warning("no sign-in endpoints for %s (%s)", issuer, exc.log_detail)
        jwks_uri = discovery.get("jwks_uri")
        try:
            check_url(str(jwks_uri), "jwks_uri")
        except ValueError as exc:
            raise IdpUnavailable(
                "The identity provider's jwks_uri is not usable.", log_detail=str(exc)
            ) from None
        document = await self._get_json(str(jwks_uri))
        self.fetches += 1
        keys = []
        for jwk in document.get("keys", []) if isinstance(document.get("keys"), list) else []:
            parsed = _parse_jwk(jwk)
            if parsed is not None:
                keys.append(parsed)
        if not keys:
            raise IdpUnavailable(
                "The identity provider publishes no usable signing key.",
                log_detail=f"jwks_uri {jwks_uri} has no usable keys",
            )
        log.info("loaded %d signing keys for %s", len(keys), issuer)
        return tuple(keys)

    async def _get_json(self, url: str) -> dict[str, Any]:
        """A bounded GET: at most MAX_DOCUMENT_BYTES read, whatever the IdP sends (a 10 MB
        JWKS is refused as unusable, not parsed), within the IdP's HTTP timeout."""
        timeout = self._idp.http_timeout_seconds
        try:
            status, body = await json_answer(
                self._http, "GET", url, seconds=timeout, limit=MAX_DOCUMENT_BYTES
            )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise IdpUnavailable(
                "The identity provider could not be reached.",
                log_detail=f"GET {url}: {type(exc).__name__}",
            ) from exc
        except TooLarge as exc:
            if exc.status == 200:
                raise IdpUnavailable(
                    "The identity provider sent a document too large to be a key set.",
                    log_detail=f"GET {url}: over {MAX_DOCUMENT_BYTES} bytes",
                ) from None
            status, body = exc.status, None
        if status != 200:
            raise IdpUnavailable(
                "The identity provider answered with an error.",
                log_detail=f"GET {url}: HTTP {status}",
            )
        if body is None:
            raise IdpUnavailable(
                "The identity provider sent something that is not JSON.", log_detail=f"GET {url}"
            )
        return body


# Discovery documents and key sets are a few KB; real ones stay far below this.
MAX_DOCUMENT_BYTES = 512 * 1024


def endpoints_from(discovery: dict[str, Any]) -> SignInEndpoints:
    """OIDC Discovery §3: both endpoints are required of a provider that signs people in; the
    issuers' URL rule (https, plain http only on loopback) holds for them too."""
    urls = []
    for name in ("authorization_endpoint", "token_endpoint"):
        value = str(discovery.get(name))
        # RFC 6749 §3.1 and §3.2: either endpoint may carry a query, which is kept.
        parts = urlsplit(value)
        try:
            check_url(urlunsplit(parts._replace(query="")), name)
            urls.append(value)
        except ValueError as exc:
            raise IdpUnavailable(
                f"The identity provider's {name} is not usable.", log_detail=str(exc)
            ) from None
    supported = discovery.get("authorization_response_iss_parameter_supported") is True
    return SignInEndpoints(urls[0], urls[1], iss_parameter=supported)


def _parse_jwk(jwk: Any) -> SigningKey | None:
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    if jwk.get("kty") not in ("RSA", "EC", "OKP") or "d" in jwk:
        return None  # never a symmetric key, never a private one
    try:
        key = PyJWK(jwk).key
    except (PyJWKError, ValueError, TypeError, KeyError):
        log.warning("skipping an unusable JWK (kid=%r)", jwk.get("kid"))
        return None
    if not isinstance(key, PublicKey):
        return None
    kid = jwk.get("kid")
    alg = jwk.get("alg")
    return SigningKey(
        kid if isinstance(kid, str) else None, key, alg if isinstance(alg, str) else None
    )
