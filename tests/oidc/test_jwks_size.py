"""A bad neighbour: an IdP whose key set is 10 MB. The broker reads at most 512 KB of it and
answers 503 IdpUnavailable, never parsing it, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.config import OidcIdp
from broker.errors import IdpUnavailable
from broker.oidc.jwks import JwksCache
from broker_demo.aws import serve_asgi

pytestmark = [pytest.mark.peers, pytest.mark.anyio]


class HugeIdp:
    def __init__(self) -> None:
        self.issuer = ""
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({"issuer": self.issuer, "jwks_uri": self.issuer + "/jwks"})

    async def jwks(self, request: Request) -> Response:
        pad = [{"kty": "RSA", "kid": f"k{i}", "n": "x" * 1000, "e": "AQAB"} for i in range(10_000)]
        return Response(json.dumps({"keys": pad}), media_type="application/json")


@pytest.fixture
def huge() -> Iterator[HugeIdp]:
    idp = HugeIdp()
    with serve_asgi(idp.app) as url:
        idp.issuer = url
        yield idp


async def test_a_10_mb_key_set_is_unavailable_not_parsed(huge: HugeIdp) -> None:
    config = OidcIdp.model_validate(
        {"type": "oidc", "issuer": huge.issuer, "audiences": ["sts.amazonaws.com"]}
    )
    async with httpx.AsyncClient() as http:
        keys = JwksCache(config, http)
        with pytest.raises(IdpUnavailable) as info:
            await keys.key("k1", "RS256")
    assert info.value.status == 503
    assert info.value.log_detail is not None
    assert "over 524288 bytes" in info.value.log_detail
