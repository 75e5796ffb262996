"""Fixtures for the OIDC tests: a counting issuer on loopback and a key to sign with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.peers.counting_idp import CountingIdp


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def counting_idp(rsa_key: rsa.RSAPrivateKey) -> Iterator[CountingIdp]:
    idp = CountingIdp()
    jwk = dict(RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True))
    jwk.update(kid="k1", alg="RS256", use="sig")
    idp.keys = [jwk]
    with idp.running():
        yield idp
