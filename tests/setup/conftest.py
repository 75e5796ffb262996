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
    _fill_organizations_gaps()
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


def _fill_organizations_gaps() -> None:
    """moto 5 answers ListAccounts to anyone, even outside an organization, with an empty list.

    Organizations API reference, ListAccounts: "This operation can be called only from the
    organization's management account or by a member account that is a delegated
    administrator"; its errors include AccessDeniedException and
    AWSOrganizationsNotInUseException. The stand-in now refuses as that says, and answers a
    delegated administrator from the organization's accounts. The helper is unchanged.
    """
    from moto.organizations.exceptions import (
        AWSOrganizationsNotInUseException,
        OrganizationsClientError,
    )
    from moto.organizations.models import OrganizationsBackend, organizations_backends

    original = OrganizationsBackend.list_accounts
    if getattr(original, "refuses_outsiders", False):
        return

    def list_accounts(self: Any, **kwargs: Any) -> Any:
        if self.org is not None:
            return original(self, **kwargs)
        home = organizations_backends.master_accounts.get(self.account_id)
        if home is None:
            raise AWSOrganizationsNotInUseException
        management = organizations_backends[home[0]][home[1]]
        if not any(admin.account.id == self.account_id for admin in management.admins):
            raise OrganizationsClientError(
                "AccessDeniedException", "You don't have permissions to access this resource."
            )
        return original(management, **kwargs)

    list_accounts.refuses_outsiders = True  # type: ignore[attr-defined]
    OrganizationsBackend.list_accounts = list_accounts  # type: ignore[method-assign,assignment]


@pytest.fixture
def iam_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty IAM and dummy credentials through the standard environment chain."""
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_server


@pytest.fixture
def org_endpoint(iam_endpoint: str) -> str:
    """The IAM endpoint's moto, with an organization whose management account the caller is."""
    import boto3

    org = boto3.client("organizations", endpoint_url=iam_endpoint, region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    return iam_endpoint
