"""`broker setup export` and `broker setup plan`: IAM as code, and a drift check that CI can fail on."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from broker.config import load_config
from broker.setup import SetupError, export_cfn, export_pulumi, iam
from broker.setup.desired import AccountSpec, desired, provenance
from broker.setup.plan import Drift, plan_account

IN_SYNC, DRIFT, FAILED = 0, 2, 1
THUMBPRINT_ARG = re.compile(r"(?P<idp>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<hex>[0-9a-fA-F]{40})")


def add_steps(steps: argparse._SubParsersAction[Any]) -> None:
    p = steps.add_parser(
        "export", help="the IAM providers and roles the config implies, as Pulumi or CloudFormation"
    )
    p.add_argument("--format", required=True, choices=["pulumi", "cloudformation"])
    p.add_argument(
        "--trust-only",
        action="store_true",
        help="only each role's trust policy and duration, for roles managed in other code",
    )
    p.add_argument(
        "--output", metavar="DIR", help="one file per account here (needed for several accounts)"
    )
    _common(p)
    p.set_defaults(func=_export)
    p = steps.add_parser(
        "plan", help="compare live IAM with the config; exit 2 when they differ, 0 when in sync"
    )
    _common(p)
    p.add_argument("--endpoint-url", metavar="URL", help="IAM endpoint, e.g. a local test server")
    p.add_argument("--region", help="signing region (IAM is global; default us-east-1)")
    p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / the standard chain)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_plan)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="default: $BROKER_CONFIG")
    p.add_argument("--account", metavar="ID", help="only this account's providers and roles")
    p.add_argument(
        "--allow-any-subject",
        action="store_true",
        help="accept trust policies that cannot tell apart who may assume a role",
    )
    p.add_argument(
        "--thumbprint",
        action="append",
        default=[],
        dest="thumbprints",
        metavar="IDP=HEX",
        help="manage this thumbprint for an OIDC IdP (default: none; IAM uses its trusted CAs)",
    )


def _fail(message: str) -> int:
    print(f"broker: {message}", file=sys.stderr)
    return FAILED


def _specs(args: argparse.Namespace) -> tuple[list[AccountSpec], str]:
    path = args.config or os.environ.get("BROKER_CONFIG") or ""
    config = load_config(path or None)
    thumbprints: dict[str, tuple[str, ...]] = {}
    for item in args.thumbprints:
        m = THUMBPRINT_ARG.fullmatch(item)
        if m is None:
            raise SetupError(f"--thumbprint {item!r}: expected IDP=40 hex characters")
        thumbprints[m["idp"]] = (*thumbprints.get(m["idp"], ()), m["hex"].lower())
    specs = desired(
        config,
        account=args.account,
        allow_any_subject=args.allow_any_subject,
        thumbprints=thumbprints,
    )
    return specs, provenance(path)


def _export(args: argparse.Namespace) -> int:
    try:
        specs, source = _specs(args)
    except SetupError as exc:
        return _fail(exc.detail)
    command = f"broker setup export --format {args.format}" + (
        " --trust-only" if args.trust_only else ""
    )
    module = export_pulumi if args.format == "pulumi" else export_cfn
    render = module.render_trust_only if args.trust_only else module.render
    # Everything is rendered before anything is written: a refusal leaves no partial output.
    files: dict[str, str] = {}
    for spec in specs:
        text = render(spec, source, command + f" --account {spec.account}")
        files.update(_files(args, spec, text))
    if args.output is None:
        if len(specs) > 1:
            return _fail(
                f"roles in {len(specs)} accounts ({', '.join(s.account for s in specs)}): "
                "pass --output DIR for one file each, or --account ID"
            )
        sys.stdout.write(next(iter(files.values())))
    else:
        for name, text in files.items():
            target = Path(args.output) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}", file=sys.stderr)
    for spec in specs:
        for w in spec.warnings:
            print(f"warning: {spec.account}: {w}", file=sys.stderr)
    return 0


def _files(args: argparse.Namespace, spec: AccountSpec, text: str) -> dict[str, str]:
    acct = spec.account
    if args.format == "cloudformation":
        return {f"{acct}{'-trust' if args.trust_only else ''}.yaml": text}
    if args.trust_only:
        return {f"trust_{acct}.py": text}
    # A Pulumi project per account: the program and the file that names its runtime.
    project = (
        f"name: broker-iam-{acct}\nruntime: python\ndescription: IAM for the broker in {acct}\n"
    )
    return {f"{acct}/__main__.py": text, f"{acct}/Pulumi.yaml": project}


def _plan(args: argparse.Namespace) -> int:
    try:
        specs, source = _specs(args)
        if len(specs) > 1:
            return _fail(
                f"roles in {len(specs)} accounts ({', '.join(s.account for s in specs)}): "
                "plan one at a time with --account ID, with that account's credentials"
            )
        client = iam.client(
            endpoint_url=args.endpoint_url, region=args.region, profile=args.profile
        )
        spec = specs[0]
        drifts = plan_account(client, spec)
    except SetupError as exc:
        return _fail(exc.detail)
    if args.json:
        doc = {"account": spec.account, "config": source, "in_sync": not drifts}
        print(json.dumps(doc | {"differences": [d.to_json() for d in drifts]}, indent=2))
    else:
        print("\n".join(_lines(spec, source, drifts)))
    return DRIFT if drifts else IN_SYNC


def _lines(spec: AccountSpec, source: str, drifts: list[Drift]) -> list[str]:
    label = f" ({spec.label})" if spec.label else ""
    lines = [f"account {spec.account}{label} against {source}"]
    for d in drifts:
        lines.append(f"{'+' if d.kind == 'missing' else '~'} {d.what}: {d.kind}")
        lines += [f"    {x}" for x in d.detail]
    count = f"{len(drifts)} difference{'s' if len(drifts) != 1 else ''}"
    lines.append(f"plan: {count}" if drifts else "plan: in sync")
    return lines
