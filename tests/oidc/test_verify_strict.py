"""JOSE strictness: compact serialization only, unpadded canonical base64url, bounded and
well-formed JSON, and only the JWT types an IdP's credentials carry. Each refusal is offline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from operator import attrgetter

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.errors import BrokerError, InvalidToken
from tests.oidc.tokens import NOW, OfflineIdp, b64, claims, header, sign, text, token

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

Forge = Callable[[rsa.RSAPrivateKey], str]


@dataclass(frozen=True)
class Bad:
    name: str
    forge: Forge
    error: type[BrokerError] = InvalidToken


def _part(tok: str, i: int, new: str) -> str:
    parts = tok.split(".")
    parts[i] = new
    return ".".join(parts)


def _mod4_is_1(part: str) -> str:
    return part + "A" * ((1 - len(part)) % 4 or 4)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


BAD = [
    # RFC 7515 §7.1: compact serialization, three parts
    Bad("jwe-five-parts", lambda k: token(k) + ".e30.e30"),
    Bad("json-serialization", lambda k: '{"payload":"e30","signatures":[]}'),
    Bad("two-parts", lambda k: token(k).rsplit(".", 1)[0]),
    # RFC 7515 §2: base64url, no padding
    Bad("padded-header", lambda k: _part(token(k), 0, token(k).split(".")[0] + "==")),
    Bad("padded-signature", lambda k: token(k) + "="),
    Bad("plus-in-payload", lambda k: _part(token(k), 1, "+" + token(k).split(".")[1][1:])),
    Bad("slash-in-signature", lambda k: _part(token(k), 2, "/" + token(k).split(".")[2][1:])),
    Bad("space-in-payload", lambda k: _part(token(k), 1, " " + token(k).split(".")[1])),
    Bad("newline-in-header", lambda k: _part(token(k), 0, token(k).split(".")[0] + "\n")),
    Bad("length-mod-4-is-1", lambda k: _part(token(k), 1, _mod4_is_1(token(k).split(".")[1]))),
    # "e30" is {}; "e31" decodes to the same bytes with a non-zero unused bit
    Bad("non-canonical-base64", lambda k: _part(token(k), 0, "e31")),
    Bad("non-ascii", lambda k: _part(token(k), 1, "é" + token(k).split(".")[1])),
    # RFC 8259 / RFC 7519 §4
    Bad("header-not-utf8", lambda k: _part(token(k), 0, b64(b"\xff\xfe{}"))),
    Bad("utf16-header", lambda k: _part(token(k), 0, b64(text(header()).encode("utf-16")))),
    Bad(
        "duplicate-header-member",
        lambda k: sign(k, '{"alg":"none","alg":"RS256","kid":"k1"}', text(claims())),
    ),
    Bad(
        "duplicate-claim",
        lambda k: sign(k, text(header()), text(claims())[:-1] + ',"sub":"other"}'),
    ),
    Bad("nan-claim", lambda k: sign(k, text(header()), text(claims())[:-1] + ',"x":NaN}')),
    Bad("infinity-exp", lambda k: sign(k, text(header()), text(claims(exp=0))[:-2] + "Infinity}")),
    Bad(
        "escaped-lone-surrogate",
        lambda k: sign(k, text(header()), text(claims())[:-1] + ',"n":"\\ud800"}'),
    ),
    # finding 10: deep nesting is refused, not a RecursionError
    Bad(
        "deep-header", lambda k: sign(k, '{"alg":"RS256","x":' + _deep(5000) + "}", text(claims()))
    ),
    Bad(
        "deep-payload",
        lambda k: sign(k, text(header()), text(claims())[:-1] + ',"x":' + _deep(5000) + "}"),
    ),
    Bad("deep-objects", lambda k: sign(k, text(header()), '{"a":' * 1500 + "1" + "}" * 1500)),
    Bad(
        "depth-33",
        lambda k: sign(k, text(header()), text(claims())[:-1] + ',"x":' + _deep(32) + "}"),
    ),
    # finding 15: a JWT of another type is not a credential (RFC 8725 §3.11)
    Bad("typ-logout", lambda k: token(k, header(typ="logout+jwt"))),
    Bad("typ-access-token", lambda k: token(k, header(typ="at+jwt"))),
    Bad("typ-secevent", lambda k: token(k, header(typ="secevent+jwt"))),
    Bad("typ-not-a-string", lambda k: token(k, header(typ=1))),
    Bad("cty-nested-jwt", lambda k: token(k, header(cty="JWT"))),
    Bad("exp-year-beyond-9999", lambda k: token(k, exp=10**12)),
]


@pytest.fixture
async def offline(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[OfflineIdp]:
    idp = OfflineIdp(rsa_key)
    yield idp
    await idp.http.aclose()


@pytest.mark.parametrize("case", BAD, ids=attrgetter("name"))
async def test_refused(case: Bad, offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(case.error) as caught:
        await offline.verifier.verify(case.forge(rsa_key), now=NOW)
    assert type(caught.value) is case.error
    assert 400 <= caught.value.status < 500
    if case.name != "exp-year-beyond-9999":
        assert offline.requests == 0, "refused before any key was fetched"


def test_case_names_are_unique() -> None:
    assert len({c.name for c in BAD}) == len(BAD)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "application/jwt", "Application/JWT"], ids=str)
async def test_default_accepts_plain_jwts(
    typ: str | None, offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey
) -> None:
    identity = await offline.verifier.verify(token(rsa_key, header(typ=typ)), now=NOW)
    assert identity.subject == claims()["sub"]


async def test_depth_at_the_limit_is_fine(offline: OfflineIdp, rsa_key: rsa.RSAPrivateKey) -> None:
    deep = text(claims())[:-1] + ',"x":' + _deep(31) + "}"  # 31 inside the claims object: 32
    await offline.verifier.verify(sign(rsa_key, text(header()), deep), now=NOW)


@pytest.mark.parametrize(
    ("types", "typ", "accepted"),
    [
        (["at+jwt"], "at+jwt", True),
        (["at+jwt"], "application/at+jwt", True),
        (["at+jwt"], None, False),
        (["at+jwt"], "JWT", False),
        (["JWT", "at+jwt"], None, True),
        (["JWT", "at+jwt"], "at+JWT", True),
        (["JWT", "at+jwt"], "logout+jwt", False),
    ],
)
async def test_token_types_per_idp(
    types: list[str], typ: str | None, accepted: bool, rsa_key: rsa.RSAPrivateKey
) -> None:
    idp = OfflineIdp(rsa_key, token_types=types)
    try:
        tok = token(rsa_key, header(typ=typ))
        if accepted:
            await idp.verifier.verify(tok, now=NOW)
        else:
            with pytest.raises(InvalidToken, match="type"):
                await idp.verifier.verify(tok, now=NOW)
            assert idp.requests == 0
    finally:
        await idp.http.aclose()


@pytest.mark.parametrize("bad", [[], [""], ["not a type"], ["a/b/c"]], ids=str)
def test_token_types_config_is_checked(bad: list[str]) -> None:
    from broker.config import OidcIdp

    with pytest.raises(ValueError, match="token_types"):
        OidcIdp.model_validate(
            {"type": "oidc", "issuer": "https://i.example", "audiences": ["a"], "token_types": bad}
        )
