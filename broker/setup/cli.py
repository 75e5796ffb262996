"""Wires the setup commands into `broker` (thumbprint, setup …, config check), and runs
`setup trust-policy` and `config check` itself."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from broker.config import load_config
from broker.setup import SetupError, accounts_cli, iac_cli, providers_cli
from broker.setup.check import check
from broker.setup.enforcement import REMEDY
from broker.setup.output import emit, fail, net_options, table
from broker.setup.samples import parse_samples
from broker.setup.trust_policy import trust_policy


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `thumbprint`, `setup` and `config` on the top-level parser."""
    providers_cli.add_thumbprint(sub)

    setup = sub.add_parser(
        "setup", help="IAM identity providers, trust policies, IAM as code, drift plans"
    )
    steps = setup.add_subparsers(dest="setup_command", required=True, metavar="STEP")
    providers_cli.add_steps(steps)
    p = steps.add_parser(
        "trust-policy", help="print the least-privilege trust policy for a configured role"
    )
    p.add_argument("--role", required=True, metavar="NAME")
    p.add_argument(
        "--idp", metavar="NAME", help="only this identity provider (default: every one a rule uses)"
    )
    p.add_argument("--config", metavar="FILE", help="default: $BROKER_CONFIG")
    p.add_argument(
        "--tags",
        action="store_true",
        help="the IdP sends PrincipalTag attributes: allow sts:TagSession",
    )
    p.add_argument(
        "--source-identity",
        action="store_true",
        help="the IdP sends SourceIdentity: allow sts:SetSourceIdentity",
    )
    p.add_argument(
        "--provider-arn",
        metavar="ARN",
        help="the IAM provider's ARN, when not derived from the role's account",
    )
    p.add_argument(
        "--allow-any-subject",
        action="store_true",
        help="print a policy even when IAM cannot tell apart who may assume the role",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_trust_policy)
    iac_cli.add_steps(steps)
    accounts_cli.add_steps(steps)

    config = sub.add_parser("config", help="validate the configuration")
    cmds = config.add_subparsers(dest="config_command", required=True, metavar="STEP")
    p = cmds.add_parser(
        "check", help="validate the file, then fetch each IdP's discovery, keys and metadata"
    )
    p.add_argument("--config", metavar="FILE", help="default: $BROKER_CONFIG")
    p.add_argument(
        "--offline", action="store_true", help="no network: the file and local metadata only"
    )
    p.add_argument(
        "--claims",
        action="append",
        default=[],
        metavar="IDP=FILE",
        help="a JSON file of one real token's claims: warn about rule paths it does not have",
    )
    net_options(p)
    p.set_defaults(func=_config_check)


def _trust_policy(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        policy = trust_policy(
            config,
            args.role,
            idp=args.idp,
            tags=args.tags,
            source_identity=args.source_identity,
            provider_arn=args.provider_arn,
            allow_any_subject=args.allow_any_subject,
        )
    except SetupError as exc:
        return fail(exc.detail)
    if args.json:
        print(json.dumps(policy.to_json(), indent=2))
    else:
        # stdout stays the bare policy, ready to paste; everything said about it goes to stderr.
        print(json.dumps(policy.document, indent=2))
        for w in policy.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for b in policy.broker_only:
            print(f"broker only: {b}", file=sys.stderr)
        if policy.broker_only:
            print(f"note: {REMEDY}", file=sys.stderr)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    path = args.config or os.environ.get("BROKER_CONFIG")
    if not path:
        return fail("no configuration: pass --config FILE or set BROKER_CONFIG")
    try:
        samples = parse_samples(args.claims)
    except ValueError as exc:
        return fail(str(exc))
    report = check(
        path, offline=args.offline, timeout=args.timeout, ca_file=args.ca_file, samples=samples
    )
    rows = [[level.upper(), where, message] for level, where, message in report.findings]
    verdict = "config check: " + ("passed" if report.passed else "FAILED")
    human = [*table(["LEVEL", "WHERE", "MESSAGE"], rows), "", verdict]
    emit(args, report.to_json(), human)
    return 0 if report.passed else 1
