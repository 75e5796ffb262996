"""`broker setup accounts`: plan, then (with --apply) write account names from AWS Organizations."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from broker.config import (
    Config,
    accounts_file_path,
    parse_config,
    read_accounts_file,
    read_yaml,
)
from broker.errors import ConfigError
from broker.setup import SetupError, organizations
from broker.setup.accounts import (
    DEFAULT_FILE,
    AccountsPlan,
    file_document,
    plan_accounts,
    write_atomically,
)

OK, FAILED = 0, 2


def add_steps(steps: argparse._SubParsersAction[Any]) -> None:
    p = steps.add_parser(
        "accounts",
        help="account names from AWS Organizations into the accounts file (dry run unless --apply)",
    )
    p.add_argument("--config", metavar="FILE", help="default: $BROKER_CONFIG")
    p.add_argument(
        "--accounts-file",
        metavar="PATH",
        help=f"where to write when the config has no accounts_file (default: {DEFAULT_FILE} "
        "next to the config)",
    )
    p.add_argument(
        "--all",
        action="store_true",
        dest="everything",
        help="every account of the organization (default: the accounts the config's roles "
        "and rules name, and those already in the accounts file)",
    )
    p.add_argument("--apply", action="store_true", help="write the file (default: show the plan)")
    p.add_argument(
        "--endpoint-url", metavar="URL", help="Organizations endpoint, e.g. a test server"
    )
    p.add_argument("--region", help="signing Region (default: the partition's, us-east-1 for aws)")
    p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / the standard chain)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_accounts)


def _fail(message: str) -> int:
    print(f"broker: {message}", file=sys.stderr)
    return FAILED


def _load(path: str, given: str | None) -> tuple[Config, Path, bool]:
    """The config, the accounts file, and whether the config reads that file already."""
    data = read_yaml(path)
    ref = data.get("accounts_file") if isinstance(data, dict) else None
    if isinstance(ref, str) and ref:
        named = accounts_file_path(ref, path)
        if given is not None and Path(given).resolve() != named.resolve():
            raise SetupError(
                f"{path} reads accounts from {named} (accounts_file); "
                f"--accounts-file {given} names another file"
            )
        if not named.exists():  # named before its first run: this run writes it
            rest = {k: v for k, v in data.items() if k != "accounts_file"}
            return parse_config(rest, path), named, True
        return parse_config(data, path), named, True
    config = parse_config(data, path)
    if given is not None:
        return config, Path(given), False
    return config, Path(path).parent / DEFAULT_FILE, False


def _accounts(args: argparse.Namespace) -> int:
    path = args.config or os.environ.get("BROKER_CONFIG")
    if not path:
        return _fail("no configuration: pass --config FILE or set BROKER_CONFIG")
    try:
        config, target, linked = _load(path, args.accounts_file)
        existing = read_accounts_file(target).accounts if target.exists() else {}
        in_file = {acct: a.model_dump(exclude_unset=True) for acct, a in existing.items()}
        client = organizations.client(
            endpoint_url=args.endpoint_url,
            region=args.region,
            profile=args.profile,
            partition=config.aws.partition,
        )
        listed = organizations.list_accounts(client)
        plan = plan_accounts(
            config,
            config_path=path,
            target=target,
            linked=linked,
            in_file=in_file,
            org=listed,
            everything=args.everything,
        )
        if args.apply and plan.changes:
            write_atomically(target, file_document(in_file, plan))
            plan.applied = True
            _read_back(plan)
    except (SetupError, ConfigError) as exc:
        return _fail(exc.detail)
    except OSError as exc:
        return _fail(f"cannot write {exc.filename or 'the accounts file'}: {exc.strerror}")
    print(json.dumps(plan.to_json(), indent=2) if args.json else "\n".join(_lines(plan)))
    return FAILED if plan.errors else OK


def _read_back(plan: AccountsPlan) -> None:
    got = read_accounts_file(plan.target).accounts
    wrong = [
        r.account for r in plan.changes if r.account not in got or got[r.account].name != r.name
    ]
    if wrong:
        plan.errors.append(f"read back: {plan.target} does not name {', '.join(wrong)} as planned")
    plan.confirmed = not plan.errors


def _lines(plan: AccountsPlan) -> list[str]:
    reads = "read by the config" if plan.linked else "not read by the config yet"
    scope = "every account" if plan.everything else "the accounts the config names"
    lines = [
        f"accounts file {plan.target} ({reads})",
        f"Organizations lists {plan.listed} account(s); planning {scope}",
    ]
    rows = [[r.action, r.account, r.name, r.detail] for r in plan.rows]
    table = [["ACTION", "ACCOUNT", "NAME", "DETAIL"], *(rows or [["nothing to name", "", "", ""]])]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
    ]
    counts = {a: sum(r.action == a for r in plan.rows) for a in ("add", "rename")}
    # After a write, the line to add closes the output instead of repeating it as a note.
    said_last = plan.applied and not plan.linked
    notes = [n for n in plan.notes if not (said_last and plan.line_to_add in n)]
    lines += [f"note: {n}" for n in notes] + [f"error: {e}" for e in plan.errors]
    if plan.applied:
        lines.append(
            f"wrote {plan.target}: {counts['add']} added, {counts['rename']} renamed; read back: "
            + ("confirmed" if plan.confirmed else "MISMATCH")
        )
        if not plan.linked:
            lines += [
                f"add this line to {plan.config} so the broker reads it:",
                f"  {plan.line_to_add}",
            ]
    elif plan.changes:
        lines.append(
            f"dry run: {counts['add']} to add, {counts['rename']} to rename; "
            f"re-run with --apply to write {plan.target.name}"
        )
    else:
        lines.append("nothing to write: the accounts file is up to date")
    return lines
