"""Fixtures for the setup helper's tests: per-run PKIs and an OIDC issuer over real TLS."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.pki import HttpsServer, Pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki-a"), "Test A")


@pytest.fixture(scope="session")
def pki_b(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki-b"), "Test B")


@pytest.fixture
def issuer(pki: Pki) -> Iterator[HttpsServer]:
    """An OIDC issuer on localhost serving leaf + intermediate, keys on the same host."""
    with HttpsServer(pki.server_context()) as srv:
        srv.json(
            "/.well-known/openid-configuration",
            {"issuer": srv.url(), "jwks_uri": srv.url("/jwks")},
        )
        srv.json("/jwks", {"keys": []})
        yield srv


@pytest.fixture
def ca_bundle(pki: Pki, pki_b: Pki, tmp_path: Path) -> str:
    path = tmp_path / "roots.pem"
    path.write_bytes(pki.root.pem() + pki_b.root.pem())
    return str(path)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode: the helper talks to it over HTTP exactly as to IAM."""
    from moto.server import ThreadedMotoServer

    _fill_moto_gaps()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _fill_moto_gaps() -> None:
    """moto 5 lacks AddClientIDToOpenIDConnectProvider; give its stand-in IAM the documented behaviour.

    IAM API reference: adds the client ID; adding one already registered succeeds and does
    nothing. This changes the test peer only, never the helper under test.
    """
    from moto.core.responses import EmptyResult
    from moto.iam.responses import IamResponse

    def add_client_id_to_open_id_connect_provider(self: Any) -> Any:
        provider = self.backend.get_open_id_connect_provider(
            self._get_param("OpenIDConnectProviderArn")
        )
        client_id = self._get_param("ClientID")
        if client_id not in provider.client_id_list:
            provider.client_id_list.append(client_id)
        return EmptyResult()

    if not hasattr(IamResponse, "add_client_id_to_open_id_connect_provider"):
        # The method moto lacks, added to its class: mypy rightly knows no such attribute.
        IamResponse.add_client_id_to_open_id_connect_provider = (  # type: ignore[attr-defined]
            add_client_id_to_open_id_connect_provider
        )


@pytest.fixture
def iam_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty IAM and dummy credentials through the standard environment chain."""
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_server
