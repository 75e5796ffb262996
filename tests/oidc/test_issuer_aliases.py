"""An IdP whose tokens name it two ways (Google: `accounts.google.com` or
`https://accounts.google.com`) is configured once, with the other spelling as an alias."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from broker.config import OidcIdp
from broker.errors import UnknownIssuer
from tests.oidc.tokens import ISSUER, NOW, OfflineIdp, token

pytestmark = [pytest.mark.unit, pytest.mark.anyio]
ALIAS = "issuer.example"


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def test_a_token_naming_the_alias_is_this_idps(key: rsa.RSAPrivateKey) -> None:
    idp = OfflineIdp(key, issuer_aliases=[ALIAS])
    identity = await idp.verifier.verify(token(key, iss=ALIAS), now=NOW)
    # The identity names the configured issuer, so rules and audit see one IdP.
    assert (identity.idp, identity.issuer) == ("ci", ISSUER)
    plain = await idp.verifier.verify(token(key), now=NOW)
    assert plain.issuer == ISSUER


async def test_without_the_alias_the_other_spelling_is_refused(key: rsa.RSAPrivateKey) -> None:
    idp = OfflineIdp(key)
    with pytest.raises(UnknownIssuer):
        await idp.verifier.verify(token(key, iss=ALIAS), now=NOW)
    assert idp.requests == 0  # refused before any key is fetched


@pytest.mark.parametrize("alias", ["", "has space", "tab\there", ISSUER, "x" * 256])
def test_bad_aliases_are_refused_at_load(alias: str) -> None:
    with pytest.raises(ValidationError, match="issuer_aliases"):
        OidcIdp.model_validate(
            {"type": "oidc", "issuer": ISSUER, "audiences": ["a"], "issuer_aliases": [alias]}
        )
