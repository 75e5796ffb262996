"""The `broker` command: serve | explain | login | credential-process | console | configure |
logout | thumbprint | setup … | config check."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from broker.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="AWS federation broker")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the broker")
    serve.add_argument("--config", help="YAML config (default: $BROKER_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="trust X-Forwarded-For from these proxy addresses (comma-separated) for the client "
        "address in audit events; URLs are never derived from forwarded headers",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (the audit log already has one line per decision)",
    )
    serve.set_defaults(func=_serve)

    explain = sub.add_parser("explain", help="show which rules match an identity, and why")
    explain.add_argument("--config", help="YAML config (default: $BROKER_CONFIG)")
    explain.add_argument("--idp", help="identity provider name (with --claims)")
    explain.add_argument("--claims", help="JSON file of OIDC claims or SAML attributes")
    explain.add_argument("--saml-response", help="file holding a base64 SAMLResponse")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=_explain)

    cp = sub.add_parser(
        "credential-process", help="print credential_process JSON (for ~/.aws/config), cached"
    )
    from broker.login.commands import url_argument

    url_argument(cp)
    cp.add_argument("--role", required=True, help="role name or ARN")
    source = cp.add_mutually_exclusive_group()
    source.add_argument("--token-file", help="file holding the OIDC token")
    source.add_argument("--token-command", help="command that prints the OIDC token")
    cp.add_argument("--duration", type=int, help="session seconds (900-43200)")
    cp.add_argument("--cache-dir", help="default: $XDG_CACHE_HOME/broker or ~/.cache/broker")
    cp.add_argument("--no-cache", action="store_true")
    cp.set_defaults(func=_credential_process)

    from broker.login.commands import add_commands as add_login_commands

    add_login_commands(sub)

    _add_plugin_commands(sub)

    from broker.setup.cli import add_commands as add_setup_commands

    add_setup_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugin = _plugin_commands().get(argv[0]) if argv else None
    try:
        if plugin is not None:  # its own parser takes the rest of the line
            return int(plugin.load()(argv[1:]))
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except ConfigError as exc:
        print(f"broker: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from broker.config import load_config
    from broker.logs import configure_logging

    config = load_config(args.config)  # fail fast, with the key named, before binding
    if args.workers > 1 and config.store.is_memory():
        print(
            f"broker serve: --workers {args.workers} needs a shared store: with store.url "
            "memory:// every worker keeps its own replay cache, so an assertion would be "
            "accepted once per worker. Configure Redis (store.url, store.sentinels or "
            "store.cluster_nodes) or use --workers 1.",
            file=sys.stderr,
        )
        return 2
    if args.config:
        os.environ["BROKER_CONFIG"] = args.config
    configure_logging(args.log_level)
    uvicorn.run(
        "broker.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=args.access_log,
        proxy_headers=bool(args.forwarded_allow_ips),
        forwarded_allow_ips=args.forwarded_allow_ips,
        server_header=False,
    )
    del config
    return 0


def _explain(args: argparse.Namespace) -> int:
    from broker.config import load_config
    from broker.identity import Identity, NoProof
    from broker.issuer.explain import carried, carried_lines
    from broker.mapping import map_roles

    config = load_config(args.config)
    if args.saml_response:
        from broker.saml.explain import saml_identity

        identity = saml_identity(config, args.saml_response)
    else:
        if not args.idp or not args.claims:
            print("broker explain: give --idp and --claims, or --saml-response", file=sys.stderr)
            return 2
        if args.idp not in config.identity_providers:
            print(f"broker explain: no identity provider named {args.idp!r}", file=sys.stderr)
            return 2
        try:
            with open(args.claims, encoding="utf-8") as f:
                claims = json.load(f)
        except (OSError, ValueError) as exc:
            print(f"broker explain: cannot read --claims: {exc}", file=sys.stderr)
            return 2
        if not isinstance(claims, dict):
            print("broker explain: the claims file must hold a JSON object", file=sys.stderr)
            return 2
        idp = config.identity_providers[args.idp]
        identity = Identity(
            protocol=idp.type,
            idp=args.idp,
            issuer=getattr(idp, "issuer", None) or getattr(idp, "entity_id", None) or args.idp,
            subject=str(claims.get("sub", "")),
            attributes=claims,
            expires_at=datetime.now(UTC),
            proof=NoProof(),
        )
    decision = map_roles(identity, config)
    if args.json:
        out: dict[str, Any] = {
            "idp": identity.idp,
            "subject": identity.subject,
            "rules": [t.as_dict() for t in decision.trace],
            "granted": [
                {"name": g.name, "arn": g.arn, "rule": g.rule, **carried(config, identity, g)}
                for g in decision.grants
            ],
            "refused": [{"arn": r.arn, "reason": r.reason} for r in decision.refused],
        }
        print(json.dumps(out, indent=2))
        return 0 if decision.grants else 1
    print(f"identity: {identity.subject or '(no subject)'} from {identity.idp}\n")
    rows = [("RULE", "RESULT", "ROLES", "WHY")]
    for t in decision.trace:
        result = "n/a" if not t.applies else ("MATCH" if t.matched else "no match")
        roles = ", ".join([*(f"+{a}" for a in t.granted), *(f"-{a}" for a in t.denied)])
        rows.append((t.rule, result, roles or "-", t.reason))
    widths = [min(60, max(len(r[i]) for r in rows)) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
    print("\ngranted:" if decision.grants else "\ngranted: none")
    for g in decision.grants:
        account = f"{g.account_name} ({g.account_id})" if g.account_name else g.account_id
        print(f"  {g.name:<24} {g.arn}  account {account}  by rule {g.rule}")
        for line in carried_lines(config, identity, g):
            print(f"    {line}")
    if decision.refused:
        print("refused:")
        for ref in decision.refused:
            print(f"  {ref.arn}: {ref.reason}")
    return 0 if decision.grants else 1


def _plugin_commands() -> dict[str, EntryPoint]:
    """Commands other installed packages provide (`broker demo` comes with broker-demo). They
    are imported only when run: `broker serve` never loads them."""
    return {ep.name: ep for ep in entry_points(group="broker.commands")}


def _add_plugin_commands(sub: Any) -> None:
    for name, ep in sorted(_plugin_commands().items()):
        dist = ep.dist.name if ep.dist is not None else "a plugin"
        sub.add_parser(name, help=f"(from {dist}) see `broker {name} --help`", add_help=False)


def _credential_process(args: argparse.Namespace) -> int:
    """Without --token-file or --token-command: the session `broker login` kept."""
    from broker.client import CredentialProcessError, credential_process
    from broker.login.session import LoginError

    try:
        print(credential_process(args))
    except LoginError as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 1
    except CredentialProcessError as exc:
        print(f"broker credential-process: {exc}", file=sys.stderr)
        return 1
    return 0
