"""The oidc-provider harness itself: discovery, JWKS, JWT access tokens, claims, key rotation,
and the authorization code flow people sign in with (PKCE required, single-use codes)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.peers.oidc_provider import OidcPeerError, OidcProviderPeer, missing_prerequisites

pytestmark = pytest.mark.peers

CLAIMS: dict[str, Any] = {
    "groups": ["aws-admins", "developers"],
    "repository": "octo-org/octo-repo",
    "ref": "refs/heads/main",
    "email": "dev@example.com",
    "nested": {"team": {"name": "platform", "ids": [1, 2]}},
}


def verify(token: str, peer: OidcProviderPeer, audience: str) -> tuple[dict[str, Any], Any]:
    """Verify against the JWKS the provider serves, as any relying party would."""
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(peer.jwks())[header["kid"]]
    claims = jwt.decode(
        token, key=key, algorithms=["RS256", "ES256"], audience=audience, issuer=peer.issuer
    )
    return claims, header


@dataclass(frozen=True)
class Mint:
    name: str
    resource: str
    alg: str | None
    expected_alg: str


MINTS = [
    Mint("sts-rs256", "sts.amazonaws.com", None, "RS256"),
    Mint("es256-resource", "urn:broker:es256", None, "ES256"),
    Mint("sts-es256", "sts.amazonaws.com", "ES256", "ES256"),
    Mint("uri-audience", "https://broker.example.com/api", None, "RS256"),
]


@pytest.fixture
def own_peer() -> Iterator[OidcProviderPeer]:
    """A peer of its own, for tests that change keys under the session-wide one's users."""
    problem = missing_prerequisites()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    peer = OidcProviderPeer()
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def test_discovery_and_jwks_publish_both_signing_keys(oidc_provider: OidcProviderPeer) -> None:
    discovery = httpx.get(f"{oidc_provider.issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == oidc_provider.issuer
    assert "client_credentials" in discovery["grant_types_supported"]
    jwks = httpx.get(discovery["jwks_uri"]).json()
    published = {k["kid"]: k for k in jwks["keys"]}
    # The shared peer may have been rotated by another test: the previous kids stay published.
    assert {oidc_provider.kid("RS256"), oidc_provider.kid("ES256")} <= set(published)
    assert published[oidc_provider.kid("RS256")]["kty"] == "RSA"
    assert published[oidc_provider.kid("ES256")]["crv"] == "P-256"
    assert not any("d" in k for k in jwks["keys"]), "JWKS must publish public keys only"


@pytest.mark.parametrize("case", MINTS, ids=attrgetter("name"))
def test_minted_token_verifies_and_carries_registered_claims(
    oidc_provider: OidcProviderPeer, case: Mint
) -> None:
    client = oidc_provider.register_client(CLAIMS)
    token = oidc_provider.mint(client, resource=case.resource, alg=case.alg)

    claims, header = verify(token, oidc_provider, audience=case.resource)

    assert header["alg"] == case.expected_alg
    assert header["kid"] == oidc_provider.kid(case.expected_alg)
    assert claims["aud"] == case.resource
    assert claims["iss"] == oidc_provider.issuer
    assert claims["sub"] == client[0]
    assert claims["exp"] - claims["iat"] == oidc_provider.ttl
    assert {k: claims[k] for k in CLAIMS} == CLAIMS


def test_registered_sub_replaces_client_id(oidc_provider: OidcProviderPeer) -> None:
    sub = "repo:octo-org/octo-repo:ref:refs/heads/main"
    client = oidc_provider.register_client({"sub": sub})

    claims, _ = verify(oidc_provider.mint(client), oidc_provider, audience="sts.amazonaws.com")

    assert claims["sub"] == sub
    assert claims["client_id"] == client[0]


def test_registration_needs_the_initial_access_token(oidc_provider: OidcProviderPeer) -> None:
    response = httpx.post(
        oidc_provider.discovery["registration_endpoint"],
        json={"grant_types": ["client_credentials"], "response_types": [], "redirect_uris": []},
    )
    assert response.status_code == httpx.codes.UNAUTHORIZED


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_exported_keys_are_the_ones_the_provider_publishes(
    oidc_provider: OidcProviderPeer, alg: str
) -> None:
    private = jwt.PyJWK.from_dict(oidc_provider.private_jwk(alg))
    forged = jwt.encode(
        {"iss": oidc_provider.issuer, "aud": "sts.amazonaws.com", "sub": "forged"},
        private.key,
        algorithm=alg,
        headers={"kid": private.key_id},
    )

    claims, _ = verify(forged, oidc_provider, audience="sts.amazonaws.com")

    assert claims["sub"] == "forged"
    public = serialization.load_pem_public_key(oidc_provider.public_pem(alg))
    assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    assert public.public_numbers() == private.key.public_key().public_numbers()


def test_rotation_signs_with_new_keys_and_keeps_publishing_old_ones(
    own_peer: OidcProviderPeer,
) -> None:
    issuer = own_peer.issuer
    client = own_peer.register_client({"groups": ["g"]})
    old_tokens = {alg: own_peer.mint(client, alg=alg) for alg in ("RS256", "ES256")}
    old_kids = {alg: own_peer.kid(alg) for alg in ("RS256", "ES256")}

    own_peer.rotate_keys()

    assert own_peer.issuer == issuer
    published = {k["kid"] for k in own_peer.jwks()["keys"]}
    assert published == set(old_kids.values()) | {own_peer.kid("RS256"), own_peer.kid("ES256")}
    for alg in ("RS256", "ES256"):
        # The client registered before the restart still works.
        new_claims, new_header = verify(
            own_peer.mint(client, alg=alg), own_peer, audience="sts.amazonaws.com"
        )
        assert new_header["kid"] == own_peer.kid(alg) != old_kids[alg]
        assert new_claims["groups"] == ["g"]
        old_claims, _ = verify(old_tokens[alg], own_peer, audience="sts.amazonaws.com")
        assert old_claims["groups"] == ["g"]


# -- the authorization code flow, as people's sign-in uses it ---------------------------------

REDIRECT = "http://127.0.0.1:9/oidc/callback"  # nothing listens: the peer only redirects there


def _authorize(peer: OidcProviderPeer, client_id: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": "st",
        "nonce": "no",
        **extra,
    }
    return str(httpx.URL(peer.discovery["authorization_endpoint"], params=params))


def _pkce(verifier: str) -> dict[str, str]:
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return {"code_challenge": challenge, "code_challenge_method": "S256"}


def _redeem(peer: OidcProviderPeer, client: tuple[str, str], code: str, verifier: str) -> Any:
    return httpx.post(
        peer.discovery["token_endpoint"],
        auth=client,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_code_flow_issues_an_id_token_with_the_person_claims(
    oidc_provider: OidcProviderPeer, alg: str
) -> None:
    oidc_provider.add_person("lin", {"email": "lin@example.com", "groups": ["ops"]})
    client_id, secret = oidc_provider.register_login_client(REDIRECT, alg=alg)
    assert secret is not None
    verifier = "v" * 50
    callback = oidc_provider.sign_in(_authorize(oidc_provider, client_id, **_pkce(verifier)), "lin")
    query = dict(httpx.URL(callback).params)
    assert callback.startswith(REDIRECT)
    assert query["state"] == "st"
    assert query["iss"] == oidc_provider.issuer  # RFC 9207
    r = _redeem(oidc_provider, (client_id, secret), query["code"], verifier)
    assert r.status_code == 200, r.text
    claims, header = verify(r.json()["id_token"], oidc_provider, client_id)
    assert header["alg"] == alg
    assert claims["sub"] == "lin"
    assert claims["nonce"] == "no"
    assert claims["email"] == "lin@example.com"
    assert claims["groups"] == ["ops"]
    again = _redeem(oidc_provider, (client_id, secret), query["code"], verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"  # RFC 6749 §4.1.2: a code is single use


def test_code_flow_refuses_what_a_real_idp_refuses(oidc_provider: OidcProviderPeer) -> None:
    """PKCE is required (RFC 9700 §2.1.1), the verifier must match (RFC 7636 §4.6), unknown
    people do not sign in, and Deny answers the client with access_denied."""
    oidc_provider.add_person("lin", {"email": "lin@example.com"})
    client_id, secret = oidc_provider.register_login_client(REDIRECT)
    assert secret is not None
    no_pkce = httpx.get(_authorize(oidc_provider, client_id))
    assert no_pkce.status_code in (302, 303)
    assert "error=invalid_request" in no_pkce.headers["location"]

    good = _pkce("a" * 50)
    callback = oidc_provider.sign_in(_authorize(oidc_provider, client_id, **good), "lin")
    wrong = _redeem(
        oidc_provider, (client_id, secret), dict(httpx.URL(callback).params)["code"], "b" * 50
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"

    denied = oidc_provider.sign_in(_authorize(oidc_provider, client_id, **good), "lin", deny=True)
    assert dict(httpx.URL(denied).params)["error"] == "access_denied"
    with pytest.raises(OidcPeerError):
        oidc_provider.sign_in(_authorize(oidc_provider, client_id, **good), "nobody-registered")
