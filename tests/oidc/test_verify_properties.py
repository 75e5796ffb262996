"""Property: whatever arrives as a bearer token, the verifier answers with an identity or a
BrokerError carrying a 4xx status: never another exception (a 500), never the network."""

from __future__ import annotations

import asyncio
import string
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import BrokerError
from tests.oidc.tokens import AUDIENCE, ISSUER, KID, NOW, OfflineIdp, b64, sign, text

pytestmark = pytest.mark.unit

B64URL = string.ascii_letters + string.digits + "-_"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
times = st.one_of(
    st.integers(min_value=NOW - 10**6, max_value=NOW + 10**6),
    st.integers(min_value=10**11),  # past datetime's year 9999
    st.integers(),
    st.floats(),
    scalars,
)


def check(key: rsa.RSAPrivateKey, token: str) -> None:
    async def verify() -> None:
        offline = OfflineIdp(key)
        try:
            await offline.verifier.verify(token, now=NOW)
        finally:
            await offline.http.aclose()

    status = 200
    try:
        asyncio.run(verify())
    except BrokerError as exc:
        status = exc.status
    assert status < 500, f"{token[:80]!r} → {status}"


@SETTINGS
@given(st.text(max_size=300))
def test_any_text(rsa_key: rsa.RSAPrivateKey, token: str) -> None:
    check(rsa_key, token)


@SETTINGS
@given(st.lists(st.text(alphabet=B64URL + "=+/. ~", max_size=60), min_size=1, max_size=6))
def test_any_dotted_base64ish(rsa_key: rsa.RSAPrivateKey, parts: list[str]) -> None:
    check(rsa_key, ".".join(parts))


@SETTINGS
@given(st.binary(max_size=200), st.binary(max_size=200), st.binary(max_size=64))
def test_any_bytes_in_each_part(
    rsa_key: rsa.RSAPrivateKey, header: bytes, payload: bytes, signature: bytes
) -> None:
    check(rsa_key, f"{b64(header)}.{b64(payload)}.{b64(signature)}")


@SETTINGS
@given(st.integers(min_value=1, max_value=6000), st.sampled_from("[{"), st.booleans())
def test_any_nesting(rsa_key: rsa.RSAPrivateKey, depth: int, bracket: str, closed: bool) -> None:
    close = "]" if bracket == "[" else "}"
    inner = (bracket if bracket == "[" else '{"a":') * depth + ("1" if bracket == "{" else "")
    nested = inner + (close * depth if closed else "")
    check(rsa_key, sign(rsa_key, '{"alg":"RS256","x":' + nested + "}", "{}"))
    check(rsa_key, sign(rsa_key, '{"alg":"RS256"}', '{"x":' + nested + "}"))


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` nine times in ten."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 9 else good)


# Mostly well-formed, so that most examples get past the issuer, audience and signature
# checks and exercise what comes after them.
headers = st.fixed_dictionaries(
    {
        "alg": mostly(st.just("RS256"), st.sampled_from(["ES256", "none", "HS256"]) | scalars),
        "kid": mostly(st.just(KID), scalars),
    },
    optional={
        "typ": mostly(st.sampled_from(["JWT", "jwt", "application/jwt", "at+jwt"]), scalars),
        "crit": json_values,
        "cty": json_values,
        "jku": json_values,
        "extra": json_values,
    },
)
payloads = st.fixed_dictionaries(
    {
        "iss": mostly(st.just(ISSUER), scalars),
        "aud": mostly(
            st.just(AUDIENCE), st.lists(st.just(AUDIENCE) | scalars, max_size=3) | scalars
        ),
        "sub": mostly(st.text(min_size=1, max_size=30), scalars),
        "exp": times,
    },
    optional={
        "nbf": times,
        "iat": times,
        "groups": json_values,
        "kubernetes.io": json_values,
    },
)


@settings(SETTINGS, max_examples=400)
@given(headers, payloads)
def test_any_signed_header_and_claims(
    rsa_key: rsa.RSAPrivateKey, header: dict[str, Any], payload: dict[str, Any]
) -> None:
    """Signed with the key the IdP publishes, so every check after the signature runs too."""
    check(rsa_key, sign(rsa_key, text(header), text(payload)))
