"""People's OIDC sign-in, offline: ID tokens checked against the broker's client ID (and never
taken as a program's credential), the sealed pending-sign-in cookie, the authorization URL,
client credentials read at startup, and the discovery document's sign-in endpoints."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from broker.config import OidcIdp
from broker.errors import (
    ConfigError,
    IdpUnavailable,
    InvalidAudience,
    InvalidIssuer,
    InvalidToken,
)
from broker.logs import Scrub
from broker.oidc.authcode import SignInClient, error_code
from broker.oidc.jwks import JwksCache
from broker.oidc.pending import MAX_PENDING, PENDING_SECONDS, PendingSignIn, PendingSignIns, find
from broker.oidc.verify import OidcVerifier
from tests.oidc.tokens import AUDIENCE, ISSUER, NOW, OfflineIdp, header, token

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

CLIENT = "broker-client"
DISCOVERY = {
    "issuer": ISSUER,
    "jwks_uri": ISSUER + "/jwks",
    "authorization_endpoint": ISSUER + "/auth",
    "token_endpoint": ISSUER + "/token",
}


def login_idp(tmp_path: Path, **over: Any) -> dict[str, Any]:
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    return {"login": True, "client_id": CLIENT, "client_secret_file": str(secret), **over}


@pytest.fixture
async def offline(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> AsyncIterator[OfflineIdp]:
    idp = OfflineIdp(rsa_key, **login_idp(tmp_path))
    yield idp
    await idp.http.aclose()


# -- the ID token's audience ------------------------------------------------------------------


async def test_an_id_token_for_our_client_signs_in(
    offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey
) -> None:
    identity = await offline.verifier.verify(
        token(rsa_key, aud=CLIENT, nonce="n"), now=NOW, sign_in="ci"
    )
    assert identity.idp == "ci"
    assert identity.attributes["nonce"] == "n"


async def test_an_id_token_is_no_program_credential(
    offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey
) -> None:
    """Programs' tokens must carry one of `audiences`; the broker's client ID is not one."""
    with pytest.raises(InvalidAudience):
        await offline.verifier.verify(token(rsa_key, aud=CLIENT), now=NOW)


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": AUDIENCE}, InvalidAudience),  # a program's token is not an ID token of ours
        ({"aud": [CLIENT, "other"]}, InvalidAudience),  # several audiences and no azp
        ({"aud": CLIENT, "azp": "other"}, InvalidAudience),
        ({"aud": ["other"], "azp": CLIENT}, InvalidAudience),
    ],
    ids=["program-audience", "many-audiences-no-azp", "azp-another", "azp-without-aud"],
)
async def test_id_token_audience_refusals(
    offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey, claims: dict[str, Any], error: type
) -> None:
    with pytest.raises(error):
        await offline.verifier.verify(token(rsa_key, **claims), now=NOW, sign_in="ci")


async def test_several_audiences_with_our_azp(
    offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey
) -> None:
    tok = token(rsa_key, aud=[CLIENT, "other"], azp=CLIENT)
    assert (await offline.verifier.verify(tok, now=NOW, sign_in="ci")).subject


async def test_an_id_token_is_a_plain_jwt(offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey) -> None:
    tok = token(rsa_key, header(typ="at+jwt"), aud=CLIENT)
    with pytest.raises(InvalidToken):
        await offline.verifier.verify(tok, now=NOW, sign_in="ci")


async def test_sign_in_only_at_a_login_idp(rsa_key: rsa.RSAPrivateKey) -> None:
    programs = OfflineIdp(rsa_key)
    try:
        with pytest.raises(InvalidIssuer):
            await programs.verifier.verify(token(rsa_key, aud=CLIENT), now=NOW, sign_in="ci")
        with pytest.raises(InvalidIssuer):
            await programs.verifier.verify(token(rsa_key, aud=CLIENT), now=NOW, sign_in="other")
    finally:
        await programs.http.aclose()


# -- discovery: the sign-in endpoints ---------------------------------------------------------


def _cache(idp: OidcIdp, discovery: dict[str, Any], jwks: dict[str, Any]) -> JwksCache:
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=discovery)
        return httpx.Response(200, json=jwks)

    return JwksCache(idp, httpx.AsyncClient(transport=httpx.MockTransport(serve)))


def _jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
    return {"keys": [{**jwk, "kid": "k1", "use": "sig"}]}


async def test_endpoints_come_from_discovery(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    idp = OidcIdp.model_validate({"type": "oidc", "issuer": ISSUER, **login_idp(tmp_path)})
    endpoints = await _cache(idp, DISCOVERY, _jwks(rsa_key)).sign_in_endpoints()
    assert endpoints.authorization_endpoint == ISSUER + "/auth"
    assert endpoints.token_endpoint == ISSUER + "/token"


@pytest.mark.parametrize(
    "change",
    [
        {"authorization_endpoint": None},
        {"token_endpoint": "http://idp.example/token"},  # plain http off loopback
        {"authorization_endpoint": "javascript:alert(1)"},
        {"issuer": ISSUER + "/other"},  # Discovery §4.3: exactly the configured issuer
    ],
    ids=["no-authorization-endpoint", "http-token-endpoint", "not-a-url", "other-issuer"],
)
async def test_unusable_endpoints_fail_closed(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, change: dict[str, Any]
) -> None:
    idp = OidcIdp.model_validate({"type": "oidc", "issuer": ISSUER, **login_idp(tmp_path)})
    discovery = {k: v for k, v in {**DISCOVERY, **change}.items() if v is not None}
    with pytest.raises(IdpUnavailable) as caught:
        await _cache(idp, discovery, _jwks(rsa_key)).sign_in_endpoints()
    assert "Retry-After" in caught.value.headers


async def test_programs_keys_load_without_sign_in_endpoints(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    idp = OidcIdp.model_validate(
        {"type": "oidc", "issuer": ISSUER, "audiences": [AUDIENCE], **login_idp(tmp_path)}
    )
    discovery = {"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks"}
    cache = _cache(idp, discovery, _jwks(rsa_key))
    verifier = OidcVerifier({"ci": idp}, {"ci": cache})
    assert (await verifier.verify(token(rsa_key), now=NOW)).idp == "ci"
    with pytest.raises(IdpUnavailable):
        await cache.sign_in_endpoints()


# -- the pending sign-in cookie ---------------------------------------------------------------

KEY = b"a-session-secret-of-32-bytes-xxx"


def pending(**over: Any) -> PendingSignIn:
    base = PendingSignIn("state-1", "nonce-1", "verifier-1", "corp", "/console?role=a", NOW, True)
    return replace(base, **over)


def test_cookie_round_trip_and_secrecy() -> None:
    codec = PendingSignIns([KEY], secure=True)
    value = codec.dumps([pending()])
    assert codec.loads(value, NOW + 1) == (pending(),)
    for secret in ("state-1", "nonce-1", "verifier-1", "/console"):
        assert secret not in value  # sealed, not just signed
    assert "verifier-1" not in repr(pending())
    assert codec.cookie == "__Host-broker_oidc"
    assert PendingSignIns([KEY], secure=False).cookie == "broker_oidc"


def test_cookie_opens_across_a_rotation_only_with_a_configured_secret() -> None:
    old = PendingSignIns([KEY], secure=False).dumps([pending()])
    other = b"b-session-secret-of-32-bytes-yyy"
    assert PendingSignIns([other, KEY], secure=False).loads(old, NOW) == (pending(),)
    assert PendingSignIns([other], secure=False).loads(old, NOW) == ()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "%%%",
        "A" * 5000,
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
    ids=["empty", "short", "not-base64", "too-long", "forged"],
)
def test_cookie_garbage_reads_as_nothing(value: str) -> None:
    assert PendingSignIns([KEY], secure=False).loads(value, NOW) == ()


def test_cookie_tampering_reads_as_nothing() -> None:
    codec = PendingSignIns([KEY], secure=False)
    value = codec.dumps([pending()])
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    assert codec.loads(flipped, NOW) == ()


def test_cookie_expires_and_refuses_the_future() -> None:
    codec = PendingSignIns([KEY], secure=False)
    value = codec.dumps([pending()])
    assert codec.loads(value, NOW + PENDING_SECONDS) == ()
    assert codec.loads(value, NOW - 1) == ()


def test_cookie_keeps_the_newest_few() -> None:
    codec = PendingSignIns([KEY], secure=False)
    kept: tuple[PendingSignIn, ...] = ()
    for i in range(MAX_PENDING + 2):
        kept = codec.add(kept, pending(state=f"s{i}"))
    assert [p.state for p in kept] == [f"s{i}" for i in range(MAX_PENDING + 1, 1, -1)]
    huge = pending(next="/" + "x" * 2000)
    assert len(codec.add((huge, huge), huge)) == 1


def test_find_by_state() -> None:
    rows = (pending(state="a"), pending(state="b"))
    assert find(rows, "b") is rows[1]
    assert find(rows, "c") is None
    assert find(rows, "") is None
    assert find(rows, "\udcff") is None


# -- the authorization URL and the client's credentials ----------------------------------------


def test_authorization_url(tmp_path: Path) -> None:
    idp = OidcIdp.model_validate({"type": "oidc", "issuer": ISSUER, **login_idp(tmp_path)})
    client = SignInClient.from_config("corp", idp, "https://broker.example/oidc/callback")
    assert "s3cret-value" not in repr(client)
    url = client.authorization_url(
        ISSUER + "/auth?tenant=x", state="st", nonce="no", verifier="v" * 64
    )
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "tenant": ["x"],
        "response_type": ["code"],
        "client_id": [CLIENT],
        "redirect_uri": ["https://broker.example/oidc/callback"],
        "scope": ["openid email profile"],
        "state": ["st"],
        "nonce": ["no"],
        "code_challenge": [create_s256_code_challenge("v" * 64)],
        "code_challenge_method": ["S256"],
    }


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("alg", "content", "says"),
    [
        ("ES256", lambda: _pem(ec.generate_private_key(ec.SECP384R1())), "P-256"),
        ("ES256", lambda: _pem(rsa.generate_private_key(65537, 2048)), "P-256"),
        ("RS256", lambda: _pem(ec.generate_private_key(ec.SECP256R1())), "RSA key"),
        # The refusal under test: a key too short to sign with.
        ("RS256", lambda: _pem(rsa.generate_private_key(65537, 1024)), "at least 2048"),  # noqa: S505
        ("RS256", lambda: b"not a key", "PEM private key"),
        ("RS256", lambda: b"", "is empty"),
        ("RS256", None, "cannot read"),
    ],
    ids=["p384", "rsa-for-es256", "ec-for-rs256", "rsa-1024", "garbage", "empty", "missing"],
)
def test_private_key_jwt_key_checked_at_startup(
    tmp_path: Path, alg: str, content: Any, says: str
) -> None:
    key_file = tmp_path / "key.pem"
    if content is not None:
        key_file.write_bytes(content())
    idp = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": ISSUER,
            "login": True,
            "client_id": CLIENT,
            "private_key_jwt": {"key_file": str(key_file), "alg": alg},
        }
    )
    with pytest.raises(ConfigError, match=says) as caught:
        SignInClient.from_config("corp", idp, "https://broker.example/oidc/callback")
    assert "identity_providers.corp.private_key_jwt.key_file" in caught.value.detail


def test_private_key_jwt_loads(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    idp = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": ISSUER,
            "login": True,
            "client_id": CLIENT,
            "private_key_jwt": {"key_file": str(key_file), "alg": "ES256", "kid": "k9"},
        }
    )
    client = SignInClient.from_config("corp", idp, "https://broker.example/oidc/callback")
    assert client.method == "private_key_jwt"
    assert client.assertion_kid == "k9"
    assert "PRIVATE" not in repr(client)


def test_client_secret_file_missing(tmp_path: Path) -> None:
    idp = OidcIdp.model_validate(
        {"type": "oidc", "issuer": ISSUER, **login_idp(tmp_path, client_secret_file="/nope")}
    )
    with pytest.raises(ConfigError, match=r"client_secret_file: cannot read"):
        SignInClient.from_config("corp", idp, "https://broker.example/oidc/callback")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("access_denied", "access_denied"),
        ("login_required", "login_required"),
        ("x" * 65, "unknown"),
        ('a"b', "unknown"),
        ("line\nbreak", "unknown"),
        (None, "unknown"),
    ],
)
def test_error_code_is_shown_only_when_well_formed(value: object, shown: str) -> None:
    assert error_code(value) == shown


def test_time_is_not_frozen() -> None:
    assert time.time() > NOW  # the cookie tests' NOW is in the past, as a real start would be


# -- logs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:5 - "GET /oidc/callback?code=SECRETCODE&state=SECRETSTATE HTTP/1.1" 303',
        '127.0.0.1:5 - "GET /oidc/callback?state=SECRETSTATE&code=SECRETCODE HTTP/1.1" 401',
        "POST body grant_type=authorization_code&code=SECRETCODE&code_verifier=SECRETSTATE",
    ],
)
def test_an_access_log_line_keeps_no_code_or_state(line: str) -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", (line,), None)
    assert Scrub().filter(record)
    message = record.getMessage()
    assert "SECRETCODE" not in message
    assert "SECRETSTATE" not in message
    assert "/oidc/callback" in message or "grant_type=authorization_code" in message


def test_other_log_lines_are_left_alone() -> None:
    text = "refused StateMismatch status=401 error_id=ab path=/oidc/callback status_code=401"
    record = logging.LogRecord("broker", logging.INFO, __file__, 1, "%s", (text,), None)
    assert Scrub().filter(record)
    assert record.getMessage() == text


def test_private_key_jwt_assertion(tmp_path: Path) -> None:
    """RFC 7523 §3: iss and sub the client ID, aud the IdP's issuer, short-lived, one jti."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(_pem(key))
    idp = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": ISSUER,
            "login": True,
            "client_id": CLIENT,
            "private_key_jwt": {"key_file": str(key_file), "alg": "ES256", "kid": "k9"},
        }
    )
    client = SignInClient.from_config("corp", idp, "https://broker.example/oidc/callback")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    _, headers, body = client._auth().prepare("POST", ISSUER + "/token", headers, "a=b")
    fields = parse_qs(body)
    assert "Authorization" not in headers
    assert fields["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    assertion = fields["client_assertion"][0]
    assert jwt.get_unverified_header(assertion)["kid"] == "k9"
    claims = jwt.decode(assertion, key.public_key(), algorithms=["ES256"], audience=ISSUER)
    assert claims["iss"] == claims["sub"] == CLIENT
    assert 0 < claims["exp"] - time.time() <= 61
    assert claims["jti"]


def test_client_secret_basic_is_form_encoded_first(tmp_path: Path) -> None:
    """RFC 6749 §2.3.1: a ":" in the secret must not split it from the client ID."""
    secret = tmp_path / "odd-secret"
    secret.write_text("a:b+c d~e")
    idp = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": ISSUER,
            **login_idp(tmp_path, client_secret_file=str(secret), client_id="id:1"),
        }
    )
    client = SignInClient.from_config("corp", idp, "https://broker.example/oidc/callback")
    _, headers, _ = client._auth().prepare("POST", ISSUER + "/token", {}, "a=b")
    scheme, _, value = headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "id%3A1:a%3Ab%2Bc+d~e"
