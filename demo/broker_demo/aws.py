"""A local AWS stand-in (STS, federation endpoint, a fake console) for tests and `broker demo`.

It speaks AWS's real wire formats, checks what AWS checks (signatures, issuers, audiences,
the 5-minute SAML redemption window, role pairs, role trust policies, session limits,
parameter constraints) and records every call, so tests can assert what reached "AWS".

Like IAM, it knows only what was registered: SAML providers (their metadata or signing
certificates), OIDC providers, and roles with a trust policy and a MaxSessionDuration. A role
that was not registered does not exist, so assuming it is AccessDenied, as in AWS. The one
exception is `allow_unregistered_roles=True`, for callers that are not about trust at all
(the benchmark mode, `--no-verify`): an unregistered role is then assumed without a trust check.

Run it alone with `python -m broker_demo.aws --port 9000 [--latency-ms N] [--no-verify]`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from broker_demo import iam
from broker_demo.federation import FederationService
from broker_demo.parameters import ROLE_ARN
from broker_demo.serving import serve_asgi
from broker_demo.state import (
    FederationCall,
    Registry,
    StsCall,
    StsFault,
    issuer_key,
    oidc_provider_path,
)
from broker_demo.sts import StsService
from broker_demo.webidentity import WebIdentityVerifier

__all__ = ["AwsStandIn", "FederationCall", "StsCall", "main", "serve", "serve_asgi"]

log = logging.getLogger(__name__)
PARTITIONS = ("aws", "aws-us-gov", "aws-cn")
DEFAULT_ACCOUNT = "111122223333"
_DEFAULT_MESSAGES = {
    "Throttling": "Rate exceeded",
    "ServiceUnavailable": "Service is unavailable. Please try again later.",
    "InternalFailure": "An internal error occurred. Please try again later.",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AwsStandIn:
    """STS + federation endpoint + console page, in memory. See the module docstring."""

    def __init__(
        self,
        *,
        partition: str = "aws",
        latency_seconds: float = 0.0,
        verify_signatures: bool = True,
        accept_any_issuer: bool = False,
        allow_unregistered_roles: bool = False,
        saml_redemption_seconds: float = 300,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """`accept_any_issuer` (with `verify_signatures=False`: the benchmark mode) lets any
        well-formed JWT or SAML response through without a registered provider;
        `allow_unregistered_roles` assumes a role nobody registered without a trust check (see
        the module docstring). `saml_redemption_seconds` is STS's window for redeeming a SAML
        response after its IssueInstant (AWS: 5 minutes). `http_client` is used to fetch OIDC
        discovery and JWKS documents; `clock` returns an aware UTC datetime."""
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}")
        if latency_seconds < 0:
            raise ValueError("latency_seconds must not be negative")
        if saml_redemption_seconds <= 0:
            raise ValueError("saml_redemption_seconds must be positive")
        self.partition = partition
        self.latency_seconds = latency_seconds
        self.verify_signatures = verify_signatures
        # Set by serve() (or the CLI) so /console can call our own STS at a reachable address.
        self.base_url: str | None = None
        self._registry = Registry()
        self._web_identity = WebIdentityVerifier(
            self._registry,
            partition=partition,
            verify_signatures=verify_signatures,
            accept_any_issuer=accept_any_issuer,
            http_client=http_client,
        )
        sts = StsService(
            self._registry,
            partition=partition,
            latency_seconds=latency_seconds,
            verify_signatures=verify_signatures,
            accept_any_issuer=accept_any_issuer,
            allow_unregistered_roles=allow_unregistered_roles,
            saml_redemption_window=timedelta(seconds=saml_redemption_seconds),
            web_identity=self._web_identity,
            clock=clock,
        )
        federation = FederationService(
            self._registry,
            partition=partition,
            latency_seconds=latency_seconds,
            clock=clock,
            base_url=lambda: self.base_url,
        )
        self.app = Starlette(
            routes=[
                Route("/", sts.endpoint, methods=["GET", "POST"]),
                Route("/federation", federation.federation, methods=["GET", "POST"]),
                Route("/console", federation.console, methods=["GET"]),
                Route("/_standin/calls", self._calls_endpoint, methods=["GET"]),
                Route(
                    "/_standin/federation-calls", self._federation_calls_endpoint, methods=["GET"]
                ),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self._web_identity.aclose()

    @property
    def calls(self) -> list[StsCall]:
        """Every STS request received, in order (the live list)."""
        return self._registry.calls

    @property
    def federation_calls(self) -> list[FederationCall]:
        """Every federation-endpoint request received, in order (the live list)."""
        return self._registry.federation_calls

    @property
    def issued_access_key_ids(self) -> list[str]:
        """Access key ids of every credential set handed out so far (never reset)."""
        with self._registry.lock:
            return list(self._registry.sessions)

    def register_oidc_provider(
        self,
        issuer: str,
        client_ids: list[str],
        account_id: str = DEFAULT_ACCOUNT,
        *,
        thumbprints: list[str] | tuple[str, ...] = (),
    ) -> str:
        """Like `aws iam create-open-id-connect-provider`; returns the provider ARN."""
        iam.check_account(account_id)
        if not issuer.startswith(("https://", "http://")) or not oidc_provider_path(issuer):
            raise ValueError("issuer must be an http(s) URL")
        arn = f"arn:{self.partition}:iam::{account_id}:oidc-provider/{oidc_provider_path(issuer)}"
        provider = iam.oidc_provider(arn, issuer_key(issuer), client_ids, account_id, thumbprints)
        with self._registry.lock:
            self._registry.oidc[(account_id, issuer_key(issuer))] = provider
        return arn

    def register_saml_provider(
        self,
        name: str,
        certificates_pem: list[str] | None = None,
        account_id: str = DEFAULT_ACCOUNT,
        *,
        metadata: str | bytes | None = None,
        entity_id: str | None = None,
    ) -> str:
        """Like `aws iam create-saml-provider`; returns the ARN. Give the IdP's `metadata`
        (every signing certificate in it counts, and the assertion's Issuer must be its
        entityID), or its signing `certificates_pem` and optionally its `entity_id`."""
        iam.check_account(account_id)
        if (metadata is None) == (certificates_pem is None):
            raise ValueError("give either metadata or certificates_pem")
        if metadata is not None:
            if entity_id is not None:
                raise ValueError("the metadata names the entity id")
            entity_id, certificates = iam.read_metadata(metadata)
        else:
            certificates = tuple(certificates_pem or ())
        arn = f"arn:{self.partition}:iam::{account_id}:saml-provider/{name}"
        provider = iam.saml_provider(arn, name, certificates, account_id, entity_id)
        with self._registry.lock:
            self._registry.saml[arn] = provider
        return arn

    def register_role(
        self,
        arn: str,
        trust_policy: str | Mapping[str, Any],
        max_session_duration: int = iam.DEFAULT_MAX_SESSION,
    ) -> str:
        """Like `aws iam create-role --assume-role-policy-document … --max-session-duration …`
        (a role registered again is replaced); returns the ARN."""
        match = ROLE_ARN.fullmatch(arn)
        if match is None or match["partition"] != self.partition:
            raise ValueError(f"not a role ARN in partition {self.partition}: {arn!r}")
        role = iam.role(arn, match["account"], trust_policy, max_session_duration)
        with self._registry.lock:
            self._registry.roles[arn] = role
        return arn

    def role(self, arn: str) -> iam.Role | None:
        """The registered role, as `aws iam get-role` would show it."""
        return self._registry.role(arn)

    def update_trust_policy(self, arn: str, trust_policy: str | Mapping[str, Any]) -> None:
        """Like `aws iam update-assume-role-policy`."""
        self._update(arn, trust_policy=trust_policy)

    def set_max_session_duration(self, arn: str, seconds: int) -> None:
        """Like `aws iam update-role --max-session-duration`."""
        self._update(arn, max_session_duration=seconds)

    def _update(self, arn: str, **changes: Any) -> None:
        role = self._registry.role(arn)
        if role is None:
            raise ValueError(f"no role {arn!r} is registered")
        self.register_role(
            arn,
            changes.get("trust_policy", role.trust_policy_document),
            changes.get("max_session_duration", role.max_session_duration),
        )

    def fail_next(self, code: str, count: int = 1, status: int = 400) -> None:
        """Answer the next `count` STS calls with this error (the status is used as given)."""
        message = _DEFAULT_MESSAGES.get(code, f"Injected failure: {code}")
        with self._registry.lock:
            self._registry.failures.extend(StsFault(code, message, status) for _ in range(count))

    def reset(self) -> None:
        """Forget recorded calls and pending injected failures (providers and roles stay)."""
        with self._registry.lock:
            self._registry.calls.clear()
            self._registry.federation_calls.clear()
            self._registry.failures.clear()

    async def _calls_endpoint(self, request: Request) -> JSONResponse:
        with self._registry.lock:
            calls = [dataclasses.asdict(c) for c in self._registry.calls]
        return JSONResponse(calls)

    async def _federation_calls_endpoint(self, request: Request) -> JSONResponse:
        with self._registry.lock:
            calls = [dataclasses.asdict(c) for c in self._registry.federation_calls]
        return JSONResponse(calls)


@contextlib.contextmanager
def serve(standin: AwsStandIn, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the stand-in with uvicorn in a background thread; yields its base URL
    (e.g. "http://127.0.0.1:54321") and stops the server cleanly on exit."""
    previous = standin.base_url
    with serve_asgi(standin.app, host, port) as url:
        standin.base_url = url
        try:
            yield url
        finally:
            standin.base_url = previous


def main(argv: list[str] | None = None) -> None:
    """`python -m broker_demo.aws`: see broker_demo.awscli."""
    from broker_demo.awscli import run

    run(argv)


if __name__ == "__main__":
    main()
