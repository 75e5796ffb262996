"""`broker thumbprint` and `broker setup oidc-provider | saml-provider`: the IAM identity
providers, planned, applied and read back, and the thumbprints an OIDC one may take."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from broker.config import load_config
from broker.setup import SetupError, iam
from broker.setup.issuer import check_account, issuer_metadata
from broker.setup.metadata import check_metadata, load
from broker.setup.output import emit, fail, net_options, table
from broker.setup.thumbprint import IAM_NOTE, Probe, ThumbprintReport, thumbprint


def add_thumbprint(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "thumbprint", help="the IAM thumbprint of an OIDC issuer, from the chain it presents"
    )
    p.add_argument("issuer", metavar="ISSUER_URL")
    net_options(p)
    p.set_defaults(func=_thumbprint)


def add_steps(steps: argparse._SubParsersAction[Any]) -> None:
    p = steps.add_parser(
        "oidc-provider", help="create or update the IAM OIDC provider (dry run unless --apply)"
    )
    p.add_argument("--issuer", required=True, metavar="URL")
    p.add_argument(
        "--client-id", required=True, nargs="+", action="extend", metavar="ID", dest="client_ids"
    )
    p.add_argument(
        "--thumbprint",
        nargs="+",
        action="extend",
        metavar="auto|none|HEX",
        dest="thumbprints",
        help="auto (default): take it from the issuer; none: let IAM use its trusted root CAs",
    )
    _iam_options(p)
    p.set_defaults(func=_oidc_provider)
    p = steps.add_parser(
        "saml-provider", help="create or update the IAM SAML provider (dry run unless --apply)"
    )
    p.add_argument("--name", help="the IdP's provider name (not with --issuer)")
    p.add_argument("--metadata", metavar="FILE|URL", help="the IdP's metadata (not with --issuer)")
    p.add_argument(
        "--issuer",
        action="store_true",
        help="the broker's own provider (issuer mode), from the config's issuer section",
    )
    p.add_argument("--account", metavar="ID", help="the account the credentials must be for")
    p.add_argument("--config", metavar="FILE", help="with --issuer; default: $BROKER_CONFIG")
    _iam_options(p)
    p.set_defaults(func=_saml_provider)


def _iam_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--apply", action="store_true", help="make the changes (default: show the plan)")
    p.add_argument("--endpoint-url", metavar="URL", help="IAM endpoint, e.g. a local test server")
    p.add_argument("--region", help="signing region (IAM is global; default us-east-1)")
    p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / the standard chain)")
    net_options(p)


def _thumbprint(args: argparse.Namespace) -> int:
    report = thumbprint(args.issuer, timeout=args.timeout, ca_file=args.ca_file)
    emit(args, report.to_json(), _thumbprint_lines(report))
    return 0 if report.ok else 1


def _thumbprint_lines(r: ThumbprintReport) -> list[str]:
    lines = [f"issuer    {r.issuer}", f"jwks_uri  {r.jwks_uri or '-'}", ""]
    for h in r.hosts:
        lines.append(f"{h.host}:{h.port} ({h.role})")
        for p in h.probes:
            lines.append(f"  {p.address}: {p.error or 'thumbprint ' + (p.thumbprint or 'none')}")
            if p.error is None:
                lines.append(f"    {_verification(p)}")
            rows = [
                [str(i), c.subject, c.issuer, f"{c.not_after:%Y-%m-%d}", c.sha1]
                for i, c in enumerate(p.chain)
            ]
            if rows:
                lines += table(["#", "SUBJECT", "ISSUER", "EXPIRES", "SHA-1"], rows)
        lines += [f"  error: {e}" for e in h.errors] + [f"  warning: {w}" for w in h.warnings]
    lines += [f"error: {e}" for e in r.errors] + [f"warning: {w}" for w in r.warnings]
    lines += ["", "thumbprint(s): " + (", ".join(r.thumbprints) or "none"), f"note: {IAM_NOTE}"]
    return lines


def _verification(p: Probe) -> str:
    said = "chain read without certificate verification (CERT_NONE), as IAM takes it; "
    if p.verified is None:
        return said + f"no verified connection: {p.verify_error}"
    if p.verified:
        return said + f"a verified connection agrees (trusted up to {p.verified_root})"
    return said + "a verified connection was presented ANOTHER chain"


def _plan_lines(plan: iam.Plan) -> list[str]:
    lines = [f"{plan.kind} {plan.target}  ({plan.arn or 'not registered yet'})"]
    lines += table(["ACTION", "DETAIL"], [[a, d] for a, d in plan.steps] or [["nothing to do", ""]])
    lines += [f"note: {n}" for n in plan.notes] + [f"error: {e}" for e in plan.errors]
    if plan.applied:
        lines.append("applied; read back: " + ("confirmed" if plan.confirmed else "MISMATCH"))
    elif plan.steps and not plan.errors:
        lines.append("dry run: nothing changed; re-run with --apply to make these changes")
    return lines


def _client(args: argparse.Namespace) -> Any:
    return iam.client(endpoint_url=args.endpoint_url, region=args.region, profile=args.profile)


def _oidc_provider(args: argparse.Namespace) -> int:
    choice = [t.lower() for t in (args.thumbprints or ["auto"])]
    issuer = args.issuer.rstrip("/")
    errors = iam.validate_oidc(
        issuer, args.client_ids, [t for t in choice if t not in ("auto", "none")]
    )
    if errors:
        return fail("; ".join(errors))
    thumbprints: list[str] | None = choice
    if choice == ["none"]:
        thumbprints = None
    elif choice == ["auto"]:
        report = thumbprint(issuer, timeout=args.timeout, ca_file=args.ca_file)
        if not report.ok:
            print("\n".join(_thumbprint_lines(report)), file=sys.stderr)
            return fail("could not take a thumbprint; pass --thumbprint HEX or --thumbprint none")
        thumbprints = report.thumbprints
    elif {"auto", "none"} & set(choice):
        return fail("--thumbprint takes auto, none, or hex thumbprints, not a mix")
    try:
        client = _client(args)
        plan = iam.plan_oidc(issuer, iam.find_oidc(client, issuer), args.client_ids, thumbprints)
        if args.apply and not plan.errors:
            iam.apply_oidc(client, plan, args.client_ids, thumbprints)
    except SetupError as exc:
        return fail(exc.detail)
    emit(args, plan.to_json(), _plan_lines(plan))
    return 1 if plan.errors else 0


def _saml_provider(args: argparse.Namespace) -> int:
    given = bool(args.name and args.metadata)
    if (args.issuer and (args.name or args.metadata)) or (not args.issuer and not given):
        return fail("give --name and --metadata for an IdP, or --issuer for the broker itself")
    try:
        if args.issuer:
            args.name, raw = issuer_metadata(load_config(args.config))
        else:
            raw = load(args.metadata, timeout=args.timeout, ca_file=args.ca_file)
    except SetupError as exc:
        return fail(exc.detail)
    meta = check_metadata(raw, now=datetime.now(UTC))
    head = [f"metadata {meta.entity_id or '?'}: {len(meta.certificates)} signing certificate(s)"]
    head += table(
        ["SUBJECT", "EXPIRES", "SHA-1"],
        [[c.subject, f"{c.not_after:%Y-%m-%d}", c.sha1] for c in meta.certificates],
    )
    head += [f"error: {e}" for e in meta.errors] + [f"warning: {w}" for w in meta.warnings]
    if not meta.ok:
        emit(args, {"metadata": meta.to_json()}, head)
        return 1
    document = raw.decode("utf-8")
    errors = iam.validate_saml(args.name, document)
    if errors:
        return fail("; ".join(errors))
    try:
        client = _client(args)
        plan = iam.plan_saml(args.name, iam.find_saml(client, args.name), document)
        check_account(plan, args.account)
        if args.apply and not plan.errors:
            iam.apply_saml(client, plan, document)
            check_account(plan, args.account)
    except SetupError as exc:
        return fail(exc.detail)
    emit(args, {"metadata": meta.to_json(), **plan.to_json()}, [*head, "", *_plan_lines(plan)])
    return 1 if plan.errors else 0
