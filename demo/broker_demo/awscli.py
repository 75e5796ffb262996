"""The AWS stand-in's command line: `python -m broker_demo.aws --port 9000 [--no-verify] [--oidc …] [--saml …] [--role …]`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from broker_demo.aws import DEFAULT_ACCOUNT, PARTITIONS, AwsStandIn
from broker_demo.serving import make_server

log = logging.getLogger("broker_demo.aws")


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
        help="accept any well-formed token or SAML response and any role: decode only, "
        "no signature, provider or trust check",
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
        metavar="NAME=METADATA.xml|CERT.pem",
        help="register a SAML provider from its metadata or signing certificate (repeatable)",
    )
    parser.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="ROLE_ARN=TRUST_POLICY.json[,MAX_SESSION_SECONDS]",
        help="register a role with its trust policy (repeatable)",
    )
    parser.add_argument(
        "--account", default=DEFAULT_ACCOUNT, help="account for --oidc/--saml providers"
    )
    return parser.parse_args(argv)


def _register(standin: AwsStandIn, args: argparse.Namespace) -> None:
    for spec in args.oidc:
        issuer, _, client_ids = spec.partition("=")
        arn = standin.register_oidc_provider(issuer, client_ids.split(","), args.account)
        log.info("OIDC provider %s", arn)
    for spec in args.saml:
        name, _, file = spec.partition("=")
        text = Path(file).read_text(encoding="utf-8")
        if "BEGIN CERTIFICATE" in text:
            arn = standin.register_saml_provider(name, [text], args.account)
        else:
            arn = standin.register_saml_provider(name, account_id=args.account, metadata=text)
        log.info("SAML provider %s", arn)
    for spec in args.role:
        role_arn, _, rest = spec.partition("=")
        file, _, seconds = rest.partition(",")
        policy = Path(file).read_text(encoding="utf-8")
        log.info("role %s", standin.register_role(role_arn, policy, int(seconds or 3600)))


def run(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    standin = AwsStandIn(
        partition=args.partition,
        latency_seconds=args.latency_ms / 1000,
        verify_signatures=not args.no_verify,
        accept_any_issuer=args.no_verify,
        allow_unregistered_roles=args.no_verify,
    )
    _register(standin, args)
    standin.base_url = f"http://{args.host}:{args.port}"
    log.info(
        "Local AWS stand-in (this is not AWS) on %s; signatures and trust %s",
        standin.base_url,
        "NOT verified" if args.no_verify else "verified",
    )
    make_server(standin.app, args.host, args.port).run()
