"""`broker setup accounts`: account names from AWS Organizations, planned, then written to the accounts file."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from broker.config import Config, GrantTemplate, SamlIdp
from broker.setup.organizations import OrgAccount

DEFAULT_FILE = "accounts.yaml"
ACCOUNT_ID = re.compile(r"\d{12}")
HEADER = (
    "# Account names from AWS Organizations, read by the broker through `accounts_file`.\n"
    "# Written by `broker setup accounts --apply`, which rewrites this file: comments here are\n"
    "# not kept. Fields other than `name` are kept.\n"
)
# Plan rows, in the order a reader wants them.
ADD, RENAME, UNCHANGED, KEPT, UNLISTED = "add", "rename", "unchanged", "kept", "not listed"
CHANGES = (ADD, RENAME)
# Organizations API reference, Account.Status: a closed account is SUSPENDED for 90 days.
FLAGS = {"SUSPENDED": "SUSPENDED (closed)", "PENDING_CLOSURE": "PENDING_CLOSURE (closing)"}


@dataclass(frozen=True)
class Row:
    action: str
    account: str
    name: str  # the name the broker shows once the plan is applied
    detail: str = ""
    status: str = "ACTIVE"  # Organizations' status; "" when it does not list the account

    def to_json(self) -> dict[str, str]:
        return {
            "action": self.action,
            "account": self.account,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass
class AccountsPlan:
    config: str
    target: Path  # the accounts file
    linked: bool  # the config names it in `accounts_file`
    everything: bool  # --all
    listed: int  # accounts Organizations listed
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    applied: bool = False
    confirmed: bool | None = None

    @property
    def changes(self) -> list[Row]:
        return [r for r in self.rows if r.action in CHANGES]

    @property
    def line_to_add(self) -> str:
        """What the config needs to read the file: `accounts_file: …`, relative to the config."""
        base = Path(self.config).resolve().parent
        try:
            shown = str(self.target.resolve().relative_to(base))
        except ValueError:
            shown = str(self.target.resolve())
        return f"accounts_file: {shown}"

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "accounts_file": str(self.target),
            "linked": self.linked,
            "scope": "all" if self.everything else "referenced",
            "listed": self.listed,
            "accounts": [r.to_json() for r in self.rows],
            "changes": len(self.changes),
            "notes": self.notes,
            "errors": self.errors,
            "applied": self.applied,
            "confirmed": self.confirmed,
        }


def referenced(config: Config) -> dict[str, list[str]]:
    """Accounts the config's roles and rules name, with what names each."""
    found: dict[str, list[str]] = {}
    for name, role in config.roles.items():
        found.setdefault(role.account_id, []).append(f"roles.{name}")
    for rule in config.rules:
        for item in (*rule.grant, *rule.deny):
            if isinstance(item, GrantTemplate) and ACCOUNT_ID.fullmatch(_account_part(item)):
                found.setdefault(_account_part(item), []).append(f"rules.{rule.name}")
    return found


def _account_part(template: GrantTemplate) -> str:
    parts = template.arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def open_ended(config: Config) -> list[str]:
    """What can grant a role in an account the config never names."""
    reasons = [
        f"rule {rule.name} builds role ARNs for any account"
        for rule in config.rules
        for item in rule.grant
        if isinstance(item, GrantTemplate) and "{" in _account_part(item)
    ]
    reasons += [
        f"SAML IdP {name} grants the roles its assertions name (trust_assertion_roles)"
        for name, idp in config.identity_providers.items()
        if isinstance(idp, SamlIdp) and idp.trust_assertion_roles
    ]
    return list(dict.fromkeys(reasons))


def plan_accounts(
    config: Config,
    *,
    config_path: str,
    target: Path,
    linked: bool,
    in_file: Mapping[str, Mapping[str, Any]],
    org: Sequence[OrgAccount],
    everything: bool,
) -> AccountsPlan:
    """Pure: what writing Organizations' names into `target` changes.

    `in_file` is the accounts file as it is now; every other account of `config` is named in
    the config itself, where it is left alone (rewriting the config would lose its comments).
    """
    plan = AccountsPlan(config_path, target, linked, everything, len(org))
    listed = {a.id: a for a in org}
    by_hand = {i: a.name for i, a in config.accounts.items() if not (linked and i in in_file)}
    names = referenced(config)
    wanted = set(names) | (set(listed) if everything else set(in_file))
    cfg = Path(config_path).name
    for acct in sorted(wanted | set(in_file) | set(by_hand)):
        o = listed.get(acct)
        status = o.status if o else ""
        flag = "" if o is None or o.active else FLAGS.get(o.status, o.status)
        if acct in by_hand:
            name = by_hand[acct]
            if o is None:
                plan.rows.append(
                    Row(UNLISTED, acct, name, f"named in {cfg}; not in Organizations: kept", status)
                )
            elif o.name == name:
                plan.rows.append(Row(UNCHANGED, acct, name, _join(f"named in {cfg}", flag), status))
            else:
                said = f"named in {cfg}, left there; Organizations: {o.name!r}"
                plan.rows.append(Row(KEPT, acct, name, _join(said, flag), status))
            if acct in in_file:
                plan.notes.append(
                    f"account {acct} is in both {cfg} and {target.name}: the loader refuses "
                    f"that once {cfg} reads {target.name}; keep it in one"
                )
            continue
        current = in_file.get(acct, {}).get("name")
        if o is not None and not o.name.strip():
            plan.notes.append(f"Organizations gives account {acct} no name: left as it is")
            if current is not None:
                plan.rows.append(Row(UNCHANGED, acct, str(current), flag, status))
            continue
        if o is None:
            if current is not None:
                said = "Organizations does not list it: kept, never deleted"
                plan.rows.append(Row(UNLISTED, acct, str(current), said, status))
            else:
                plan.notes.append(
                    f"account {acct} ({', '.join(names[acct])}) is not in the organization: "
                    f"name it under `accounts:` in {cfg}"
                )
        elif current is None:
            plan.rows.append(Row(ADD, acct, o.name, flag, status))
        elif current != o.name:
            plan.rows.append(Row(RENAME, acct, o.name, _join(f"was {current!r}", flag), status))
        else:
            plan.rows.append(Row(UNCHANGED, acct, o.name, flag, status))
    plan.rows.sort(
        key=lambda r: ((ADD, RENAME, UNCHANGED, KEPT, UNLISTED).index(r.action), r.account)
    )
    reasons = [] if everything else open_ended(config)
    if reasons:
        plan.notes.append(
            "roles in accounts the config does not name can be granted ("
            + "; ".join(reasons)
            + "): --all names every account of the organization"
        )
    if not linked:
        plan.notes.append(f"{cfg} does not read {target.name} yet: add `{plan.line_to_add}`")
    return plan


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def file_document(in_file: Mapping[str, Mapping[str, Any]], plan: AccountsPlan) -> str:
    """The accounts file once `plan` is applied: every entry kept, names updated, by account."""
    entries = {acct: dict(fields) for acct, fields in in_file.items()}
    for row in plan.changes:
        entries.setdefault(row.account, {})["name"] = row.name
    body = {"accounts": {acct: entries[acct] for acct in sorted(entries)}}
    return HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one (a rename in one directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)  # the rename itself survives a crash
    finally:
        os.close(dirfd)
