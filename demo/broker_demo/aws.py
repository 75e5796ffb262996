"""A local AWS stand-in (STS, federation endpoint, a fake console) for tests and `broker demo`.

It speaks AWS's real wire formats, checks what AWS checks (signatures, issuers, audiences,
trust, parameter constraints) and records every call, so tests can assert what reached "AWS".
Run it alone with `python -m broker_demo.aws --port 9000 [--latency-ms N] [--no-verify]`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from broker_demo.federation import FederationService
from broker_demo.parameters import ROLE_ARN
from broker_demo.serving import make_server, serve_asgi
from broker_demo.state import (
    FederationCall,
    OidcProvider,
    Registry,
    RoleTrust,
    SamlProvider,
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
ACCOUNT = re.compile(r"\d{12}")
SAML_PROVIDER_NAME = re.compile(r"[\w.-]{1,128}", re.ASCII)
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
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """`accept_any_issuer` (with `verify_signatures=False`: the benchmark mode) lets any
        well-formed JWT or SAML response through without a registered provider.
        `http_client` is used to fetch OIDC discovery and JWKS documents; `clock` returns
        an aware UTC datetime."""
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}")
        if latency_seconds < 0:
            raise ValueError("latency_seconds must not be negative")
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

    def _check_account(self, account_id: str) -> None:
        if not ACCOUNT.fullmatch(account_id):
            raise ValueError("account_id must be 12 digits")

    def register_oidc_provider(
        self, issuer: str, client_ids: list[str], account_id: str = "111122223333"
    ) -> str:
        """Like `aws iam create-open-id-connect-provider`; returns the provider ARN."""
        self._check_account(account_id)
        if not issuer.startswith(("https://", "http://")) or not oidc_provider_path(issuer):
            raise ValueError("issuer must be an http(s) URL")
        arn = f"arn:{self.partition}:iam::{account_id}:oidc-provider/{oidc_provider_path(issuer)}"
        provider = OidcProvider(arn, issuer_key(issuer), tuple(client_ids), account_id)
        with self._registry.lock:
            self._registry.oidc[(account_id, issuer_key(issuer))] = provider
        return arn

    def register_saml_provider(
        self, name: str, certificates_pem: list[str], account_id: str = "111122223333"
    ) -> str:
        """Like `aws iam create-saml-provider` with the IdP's signing certificates; returns the ARN."""
        self._check_account(account_id)
        if not SAML_PROVIDER_NAME.fullmatch(name):
            raise ValueError("SAML provider name must be 1-128 of [A-Za-z0-9_.-]")
        if not certificates_pem:
            raise ValueError("a SAML provider needs at least one signing certificate")
        arn = f"arn:{self.partition}:iam::{account_id}:saml-provider/{name}"
        with self._registry.lock:
            self._registry.saml[arn] = SamlProvider(arn, name, tuple(certificates_pem), account_id)
        return arn

    def _role(self, role_arn: str) -> str:
        match = ROLE_ARN.fullmatch(role_arn)
        if match is None or match["partition"] != self.partition:
            raise ValueError(f"not a role ARN in partition {self.partition}: {role_arn!r}")
        return role_arn

    def _update_trust(self, role_arn: str, change: Callable[[RoleTrust], RoleTrust]) -> None:
        with self._registry.lock:
            self._registry.trusts[role_arn] = change(
                self._registry.trusts.get(role_arn, RoleTrust())
            )

    def trust(
        self, role_arn: str, *, subject_glob: str | None = None, saml_aud: str | None = None
    ) -> None:
        """Replace the role's trust-policy conditions (and lift a `deny`): the token's `sub`
        (or the SAML NameID) must fnmatch `subject_glob`; the SAML SubjectConfirmationData
        Recipient must equal `saml_aud`. Roles never given to trust() accept any verified proof."""
        self._update_trust(
            self._role(role_arn),
            lambda t: dataclasses.replace(
                t, subject_glob=subject_glob, saml_aud=saml_aud, deny_all=False
            ),
        )

    def deny(self, role_arn: str) -> None:
        """This role's trust policy refuses everyone: AccessDenied."""
        self._update_trust(self._role(role_arn), lambda t: dataclasses.replace(t, deny_all=True))

    def set_max_session_duration(self, role_arn: str, seconds: int) -> None:
        """The role's MaxSessionDuration (default: no limit below STS's 43200)."""
        if not 3600 <= seconds <= 43200:
            raise ValueError("MaxSessionDuration is 3600 to 43200 seconds")
        self._update_trust(
            self._role(role_arn), lambda t: dataclasses.replace(t, max_session_seconds=seconds)
        )

    def fail_next(self, code: str, count: int = 1, status: int = 400) -> None:
        """Answer the next `count` STS calls with this error (the status is used as given)."""
        message = _DEFAULT_MESSAGES.get(code, f"Injected failure: {code}")
        with self._registry.lock:
            self._registry.failures.extend(StsFault(code, message, status) for _ in range(count))

    def reset(self) -> None:
        """Forget recorded calls and pending injected failures (providers and trust stay)."""
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


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m broker_demo.aws", description="Run the local AWS stand-in (not AWS)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to every STS/federation call"
    )
    parser.add_argument("--partition", choices=PARTITIONS, default="aws")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="accept any well-formed token or SAML response: decode only, no signature or provider check",
    )
    parser.add_argument(
        "--oidc",
        action="append",
        default=[],
        metavar="ISSUER=CLIENT_ID[,CLIENT_ID]",
        help="register an OIDC provider (repeatable)",
    )
    parser.add_argument(
        "--saml",
        action="append",
        default=[],
        metavar="NAME=CERT.pem",
        help="register a SAML provider (repeatable)",
    )
    parser.add_argument(
        "--account", default="111122223333", help="account for --oidc/--saml providers"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    standin = AwsStandIn(
        partition=args.partition,
        latency_seconds=args.latency_ms / 1000,
        verify_signatures=not args.no_verify,
        accept_any_issuer=args.no_verify,
    )
    for spec in args.oidc:
        issuer, _, client_ids = spec.partition("=")
        log.info(
            "OIDC provider %s",
            standin.register_oidc_provider(issuer, client_ids.split(","), args.account),
        )
    for spec in args.saml:
        name, _, cert_file = spec.partition("=")
        pem = Path(cert_file).read_text(encoding="ascii")
        log.info("SAML provider %s", standin.register_saml_provider(name, [pem], args.account))
    standin.base_url = f"http://{args.host}:{args.port}"
    log.info(
        "Local AWS stand-in (this is not AWS) on %s; signatures %s",
        standin.base_url,
        "NOT verified" if args.no_verify else "verified",
    )
    make_server(standin.app, args.host, args.port).run()


if __name__ == "__main__":
    main()
