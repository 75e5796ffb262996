"""JWKS cache against the real oidc-provider: bounded refresh, rotation, issuer pinning."""

from __future__ import annotations

import secrets

import httpx
import pytest

from broker.config import OidcIdp
from broker.errors import IdpUnavailable, UnknownSigningKey
from broker.oidc.jwks import JwksCache
from tests.peers.oidc_provider import OidcProviderPeer

pytestmark = pytest.mark.peers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def idp(issuer: str, **over: object) -> OidcIdp:
    return OidcIdp.model_validate(
        {"type": "oidc", "issuer": issuer, "audiences": ["sts.amazonaws.com"], **over}
    )


@pytest.mark.anyio
async def test_flood_of_random_kids_costs_one_fetch_per_interval(
    oidc_provider: OidcProviderPeer,
) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as http:
        cache = JwksCache(idp(oidc_provider.issuer, jwks_min_refresh_seconds=60), http, clock=clock)
        known = await cache.key(oidc_provider.kid("RS256"), "RS256")
        assert known.kid == oidc_provider.kid("RS256")
        assert cache.fetches == 1
        for _ in range(200):
            with pytest.raises(UnknownSigningKey):
                await cache.key(secrets.token_hex(8), "RS256")
        assert cache.fetches == 1, "unknown kids inside the interval must not refetch"
        clock.now += 61
        with pytest.raises(UnknownSigningKey):
            await cache.key("still-unknown", "RS256")
        assert cache.fetches == 2
        with pytest.raises(UnknownSigningKey):
            await cache.key("and-again", "RS256")
        assert cache.fetches == 2


@pytest.mark.anyio
async def test_key_type_must_fit_the_algorithm(oidc_provider: OidcProviderPeer) -> None:
    async with httpx.AsyncClient() as http:
        cache = JwksCache(idp(oidc_provider.issuer), http)
        # The RSA key's kid presented with an EC algorithm is not that key.
        with pytest.raises(UnknownSigningKey):
            await cache.key(oidc_provider.kid("RS256"), "ES256")
        assert (await cache.key(oidc_provider.kid("ES256"), "ES256")).kid == oidc_provider.kid(
            "ES256"
        )


@pytest.mark.anyio
async def test_discovery_must_name_the_configured_issuer(oidc_provider: OidcProviderPeer) -> None:
    async with httpx.AsyncClient() as http:
        # Same server, but configured with a trailing path: discovery names another issuer.
        cache = JwksCache(idp(oidc_provider.issuer + "/"), http)
        with pytest.raises(IdpUnavailable):
            await cache.key(oidc_provider.kid("RS256"), "RS256")


@pytest.mark.anyio
async def test_unreachable_issuer_is_unavailable() -> None:
    async with httpx.AsyncClient() as http:
        cache = JwksCache(idp("http://127.0.0.1:9", http_timeout_seconds=1), http)
        with pytest.raises(IdpUnavailable):
            await cache.key("k", "RS256")
