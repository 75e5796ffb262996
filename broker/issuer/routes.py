"""`GET /issuer/metadata`: the broker's IdP metadata, for IAM's SAML provider in each account."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from broker.issuer.metadata import broker_metadata
from broker.runtime import Runtime


class IssuerMetadata:
    """Mounted when the config has an issuer section; the document is built once at start."""

    def __init__(self) -> None:
        self._document: bytes | None = None

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/issuer/metadata", self.metadata, methods=["GET"])
        return router

    async def start(self, rt: Runtime) -> None:
        self._document = broker_metadata(rt.config)

    async def metadata(self) -> Response:
        if self._document is None:
            raise RuntimeError("the issuer metadata was not started")
        return Response(
            self._document,
            media_type="application/samlmetadata+xml",
            headers={"Cache-Control": "public, max-age=3600"},
        )
