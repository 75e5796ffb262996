"""The authorization code flow's mechanics for people's sign-in (RFC 6749 §4.1, PKCE RFC 7636):
the authorization URL, and the code exchange with the broker's client authentication.

Authlib builds the requests (the grant URI, the token request, client_secret_basic and RFC 7523
private_key_jwt); the broker's pooled HTTP client sends them, with the IdP's timeout and a
bounded read. The ID token that comes back is verified by the programs' verifier, not here."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import ECKey, KeyParameters, RSAKey

from broker.config import OidcIdp
from broker.errors import AuthorizationCodeRefused, ConfigError, IdpUnavailable, InvalidToken
from broker.oidc.fetch import TooLarge, json_answer

#: RFC 7636 §4.1: 43 to 128 unreserved characters; 64 of 62 symbols is ~380 bits.
VERIFIER_LENGTH = 64
#: state and nonce: 256 bits and more, unguessable (RFC 6749 §10.10).
RANDOM_LENGTH = 43
#: How long a private_key_jwt client assertion is valid (RFC 7523 §3: exp; single use by jti).
ASSERTION_SECONDS = 60
# A token response is an ID token and an access token or two; real ones are a few KB.
MAX_RESPONSE_BYTES = 256 * 1024
# RFC 6749 §5.2: error = 1*( %x20-21 / %x23-5B / %x5D-7E ); kept short for the log.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")


def random_token(length: int = RANDOM_LENGTH) -> str:
    return str(generate_token(length))


def error_code(value: object) -> str:
    """An IdP's `error` value fit for a log line or a page, or "unknown"."""
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else "unknown"


@dataclass(frozen=True, slots=True)
class SignInClient:
    """The broker as one IdP's OIDC client: its ID, its authentication, its redirect URI."""

    idp: str
    issuer: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    timeout: float
    method: str  # client_secret_basic | private_key_jwt
    # The client secret, or the private key that signs client assertions. Never logged.
    credential: str | RSAKey | ECKey = field(repr=False)
    assertion_alg: str | None = None
    assertion_kid: str | None = None

    @classmethod
    def from_config(cls, name: str, idp: OidcIdp, redirect_uri: str) -> SignInClient:
        """Read the secret or the private key now: a missing file stops startup."""
        assert idp.client_id is not None
        where = f"identity_providers.{name}"
        common: dict[str, Any] = {
            "idp": name,
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "redirect_uri": redirect_uri,
            "scopes": tuple(idp.scopes),
            "timeout": idp.http_timeout_seconds,
        }
        if idp.client_secret_file is not None:
            secret = _read(idp.client_secret_file, f"{where}.client_secret_file")
            try:
                text = secret.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"{where}.client_secret_file: not UTF-8 text") from None
            return cls(**common, method="client_secret_basic", credential=text)
        jwt = idp.private_key_jwt
        assert jwt is not None
        what = f"{where}.private_key_jwt.key_file"
        key = _private_key(_read(jwt.key_file, what), jwt.alg, what, jwt.kid)
        return cls(
            **common,
            method="private_key_jwt",
            credential=key,
            assertion_alg=jwt.alg,
            assertion_kid=jwt.kid,
        )

    def authorization_url(self, endpoint: str, *, state: str, nonce: str, verifier: str) -> str:
        """RFC 6749 §4.1.1 with OIDC Core §3.1.2.1's nonce and RFC 7636 §4.3's S256 challenge."""
        return str(
            prepare_grant_uri(
                endpoint,
                client_id=self.client_id,
                response_type="code",
                redirect_uri=self.redirect_uri,
                scope=list(self.scopes),
                state=state,
                nonce=nonce,
                code_challenge=create_s256_code_challenge(verifier),
                code_challenge_method="S256",
            )
        )

    async def redeem(
        self, http: httpx.AsyncClient, token_endpoint: str, code: str, verifier: str
    ) -> str:
        """RFC 6749 §4.1.3: trade the code (with the PKCE verifier) for tokens; the ID token."""
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=self.redirect_uri, code_verifier=verifier
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        url, headers, body = self._auth().prepare("POST", token_endpoint, headers, body)
        status, document = await self._post(http, str(url), headers, str(body))
        if status != 200:
            error = error_code(document.get("error") if document else None)
            if status in (400, 401) and document is not None:
                # RFC 6749 §5.2: invalid_grant (used, expired, another client's code, or a
                # verifier that does not match), invalid_client…
                raise AuthorizationCodeRefused(
                    "The identity provider refused this sign-in's authorization code; sign in again.",
                    log_detail=f"idp={self.idp} status={status} error={error}",
                )
            raise IdpUnavailable(
                "The identity provider's token endpoint answered with an error.",
                log_detail=f"idp={self.idp} status={status} error={error}",
            )
        id_token = document.get("id_token") if document is not None else None
        if not isinstance(id_token, str) or not id_token:
            # OIDC Core §3.1.3.3: a successful response to an openid request has an ID token.
            raise InvalidToken(
                "The identity provider's answer has no ID token.", log_detail=f"idp={self.idp}"
            )
        return id_token

    def _auth(self) -> ClientAuth:
        if self.method == "private_key_jwt":
            headers = {"kid": self.assertion_kid} if self.assertion_kid else None
            # The audience is the IdP's issuer identifier, not the token endpoint a discovery
            # document names (OpenID Foundation, 2025: audience injection in private_key_jwt),
            # and the assertion lives a minute, not the library's default hour.
            claims = {"aud": self.issuer, "exp": int(time.time()) + ASSERTION_SECONDS}
            method = PrivateKeyJWT(alg=self.assertion_alg, headers=headers, claims=claims)
            return ClientAuth(self.client_id, self.credential, method)
        # RFC 6749 §2.3.1: both are form-urlencoded before they are joined with ":" (a secret
        # may hold one); the library joins them as given.
        assert isinstance(self.credential, str)
        return ClientAuth(
            quote_plus(self.client_id), quote_plus(self.credential), "client_secret_basic"
        )

    async def _post(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any] | None]:
        """The status and the JSON object the IdP answered (None if it is not one), read
        within the IdP's timeout and at most MAX_RESPONSE_BYTES."""
        try:
            return await json_answer(
                http,
                "POST",
                url,
                seconds=self.timeout,
                limit=MAX_RESPONSE_BYTES,
                content=body.encode(),
                headers=headers,
            )
        except TooLarge:
            raise IdpUnavailable(
                "The identity provider's token endpoint answered too much.",
                log_detail=f"idp={self.idp} over {MAX_RESPONSE_BYTES} bytes",
            ) from None
        except (httpx.HTTPError, TimeoutError) as exc:
            raise IdpUnavailable(
                "The identity provider's token endpoint could not be reached.",
                log_detail=f"idp={self.idp} POST token endpoint: {type(exc).__name__}",
            ) from exc


def _read(path: Path, what: str) -> bytes:
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{what}: {path} is empty")
    return value


def _private_key(pem: bytes, alg: str, what: str, kid: str | None) -> RSAKey | ECKey:
    """RFC 7518 §3: RS256/PS256 sign with an RSA key (≥ 2048 bits), ES256 with P-256."""
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: not an unencrypted PEM private key") from exc
    parameters: KeyParameters | None = {"kid": kid} if kid else None
    if alg == "ES256":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigError(f"{what}: ES256 needs a P-256 (secp256r1) EC key")
        return ECKey.import_key(key, parameters)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ConfigError(f"{what}: {alg} needs an RSA key of at least 2048 bits")
    return RSAKey.import_key(key, parameters)
