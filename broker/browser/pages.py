"""What the people's pages show: accounts by name with their roles, command-line snippets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from broker.config import Config
from broker.http.render import process_json, shell_exports
from broker.identity import Credentials, RoleGrant


@dataclass
class AccountGroup:
    account_id: str
    name: str
    roles: list[dict[str, str]] = field(default_factory=list)


def account_groups(config: Config, grants: tuple[RoleGrant, ...]) -> list[AccountGroup]:
    """Accounts by their configured names (the ID alongside, never alone unless unnamed)."""
    by_id: dict[str, AccountGroup] = {}
    for g in grants:
        group = by_id.setdefault(
            g.account_id, AccountGroup(g.account_id, g.account_name or f"Account {g.account_id}")
        )
        role = config.roles.get(g.name)
        description = role.description if role is not None and role.arn == g.arn else None
        group.roles.append({"name": g.name, "arn": g.arn, "description": description or ""})
    return sorted(by_id.values(), key=lambda a: (a.name.lower(), a.account_id))


def cli_snippets(creds: Credentials, grant: RoleGrant) -> dict[str, str]:
    profile = grant.name
    process_file = f"~/.aws/broker-{profile}.json"
    return {
        "role_arn": grant.arn,
        "expiration": creds.expiration_iso(),
        "env": shell_exports(creds),
        "credential_process_json": json.dumps(process_json(creds), indent=2) + "\n",
        "credential_process_config": (
            f"[profile {profile}]\ncredential_process = cat {process_file}\n"
        ),
        "credential_process_file": process_file,
    }
