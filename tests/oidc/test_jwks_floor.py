"""The JWKS refresh floor holds on every path, failures included: no refetch storm while the IdP is down."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from broker.config import OidcIdp
from broker.errors import IdpUnavailable
from broker.oidc.jwks import JwksCache
from tests.peers.counting_idp import CountingIdp

pytestmark = [pytest.mark.peers, pytest.mark.anyio]

FLOOR = 30.0
REFRESH = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(idp: CountingIdp, http: httpx.AsyncClient, clock: Clock) -> JwksCache:
    config = OidcIdp.model_validate(
        {
            "type": "oidc",
            "issuer": idp.issuer,
            "audiences": ["sts.amazonaws.com"],
            "jwks_refresh_seconds": REFRESH,
            "jwks_min_refresh_seconds": FLOOR,
            "http_timeout_seconds": 2,
        }
    )
    return JwksCache(config, http, clock=clock)


async def test_idp_down_from_the_start_costs_one_fetch_per_floor(
    counting_idp: CountingIdp,
) -> None:
    counting_idp.failing = True
    clock = Clock()
    async with httpx.AsyncClient() as http:
        keys = cache(counting_idp, http, clock)
        for _ in range(50):
            with pytest.raises(IdpUnavailable):
                await keys.key("k1", "RS256")
        assert counting_idp.discovery_hits == 1, "a failed refresh must start the floor too"
        clock.now += FLOOR - 1
        with pytest.raises(IdpUnavailable):
            await keys.key("k1", "RS256")
        assert counting_idp.discovery_hits == 1
        clock.now += 2
        counting_idp.failing = False
        assert (await keys.key("k1", "RS256")).kid == "k1"
        assert counting_idp.discovery_hits == 2


async def test_concurrent_requests_while_down_share_one_fetch(counting_idp: CountingIdp) -> None:
    counting_idp.failing = True
    async with httpx.AsyncClient() as http:
        keys = cache(counting_idp, http, Clock())
        results = await asyncio.gather(
            *(keys.key("k1", "RS256") for _ in range(20)), return_exceptions=True
        )
    # Every one of them is told the IdP is unavailable (503), none that the key is unknown.
    assert {type(r) for r in results} == {IdpUnavailable}
    assert counting_idp.discovery_hits == 1


async def test_stale_keys_keep_serving_while_the_idp_is_down(counting_idp: CountingIdp) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as http:
        keys = cache(counting_idp, http, clock)
        assert (await keys.key("k1", "RS256")).kid == "k1"
        assert counting_idp.discovery_hits == 1
        counting_idp.failing = True
        clock.now += REFRESH + 1  # the regular refresh is due, and fails
        for _ in range(50):
            assert (await keys.key("k1", "RS256")).kid == "k1"
        assert counting_idp.discovery_hits == 2
        clock.now += FLOOR + 1
        assert (await keys.key("k1", "RS256")).kid == "k1"
        assert counting_idp.discovery_hits == 3


async def test_unknown_kids_while_down_cost_one_fetch_per_floor(counting_idp: CountingIdp) -> None:
    """While the IdP cannot be reached, an unknown kid may be a key it rotated in: 503 with
    Retry-After, not a 401 verdict on the token; known kids keep working."""
    clock = Clock()
    async with httpx.AsyncClient() as http:
        keys = cache(counting_idp, http, clock)
        await keys.key("k1", "RS256")
        counting_idp.failing = True
        clock.now += FLOOR + 1
        for i in range(50):
            with pytest.raises(IdpUnavailable) as info:
                await keys.key(f"rotated-{i}", "RS256")
            assert info.value.headers["Retry-After"] == str(int(FLOOR))
        assert (await keys.key("k1", "RS256")).kid == "k1"
        assert counting_idp.discovery_hits == 2
