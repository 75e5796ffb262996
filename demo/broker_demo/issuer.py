"""Demo OIDC issuer for `broker demo`: discovery, JWKS and a token endpoint for workload tokens (not a real IdP)."""

from __future__ import annotations

import re
import secrets
import time
from html import escape
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

AUDIENCE = "sts.amazonaws.com"
REPOSITORY = "demo-org/app"
REF = "refs/heads/main"
DEFAULT_SUBJECT = f"repo:{REPOSITORY}:ref:{REF}"
TOKEN_SECONDS = 600
BANNER = "Demo OIDC issuer — not a real IdP"
# Form values go into signed claims: keep them short and unsurprising.
_VALUE = re.compile(r"[\w.:/@+=,-]{1,200}", re.ASCII)
_FIELDS = ("subject", "audience", "repository", "ref", "event_name")


class DemoIssuer:
    """`.app` serves discovery, JWKS and `POST /token`; `.mint()` makes a token in-process."""

    def __init__(self, *, issuer: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.kid = "demo-" + secrets.token_hex(4)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._run = 1000
        self.app = Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/.well-known/openid-configuration", self._discovery, methods=["GET"]),
                Route("/jwks", self._jwks, methods=["GET"]),
                Route("/token", self._token, methods=["POST"]),
            ],
            exception_handlers={HTTPException: self._http_error},  # type: ignore[dict-item]
        )

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return public | {"kid": self.kid, "alg": "RS256", "use": "sig"}

    def mint(
        self,
        *,
        subject: str = DEFAULT_SUBJECT,
        audience: str = AUDIENCE,
        repository: str = REPOSITORY,
        ref: str = REF,
        event_name: str = "push",
    ) -> str:
        """An RS256 JWT shaped like a GitHub Actions token, valid for ten minutes."""
        issued = int(time.time())
        self._run += 1
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_SECONDS,
            "jti": secrets.token_hex(16),
            "repository": repository,
            "repository_owner": repository.split("/", 1)[0],
            "ref": ref,
            "event_name": event_name,
            "run_id": str(self._run),
            "workflow": "demo",
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "jwks_uri": self.issuer + "/jwks",
                "token_endpoint": self.issuer + "/token",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "repository", "ref"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.jwk()]})

    async def _token(self, request: Request) -> Response:
        """Form fields (all optional): subject, audience, repository, ref, event_name.
        Answers the bare JWT as text, so `$(curl … /token)` drops straight into a header."""
        form = await request.form()
        values: dict[str, str] = {}
        for name in _FIELDS:
            value = form.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str) or not _VALUE.fullmatch(value):
                return PlainTextResponse(f"bad {name}\n", 400)
            values[name] = value
        return PlainTextResponse(self.mint(**values), headers={"cache-control": "no-store"})

    async def _index(self, request: Request) -> Response:
        body = (
            f"<p>Issuer <code>{escape(self.issuer)}</code>. Mint a workload token with "
            f"<code>curl -s -X POST {escape(self.issuer)}/token -d subject=demo</code>; "
            f"optional fields: {escape(', '.join(_FIELDS))}. Tokens claim "
            f"<code>repository: {REPOSITORY}</code>, <code>ref: {REF}</code> unless told "
            "otherwise. The signing key was made when <code>broker demo</code> started.</p>"
        )
        return _page("Demo OIDC issuer", body, 200)

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        return _page("Not here", "<p>Nothing at this address.</p>", exc.status_code)


def _page(title: str, body_html: str, status: int) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · {BANNER}</title></head>"
        '<body style="font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;'
        'padding:0 1rem;overflow-wrap:anywhere">'
        '<header><p id="banner" style="background:#fde68a;padding:.5em;font-weight:bold">'
        f"{BANNER}</p></header><main><h1>{escape(title)}</h1>{body_html}</main></body></html>"
    )
    return HTMLResponse(html, status, headers={"cache-control": "no-store"})
