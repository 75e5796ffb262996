"""What the people's pages show: accounts by name with their roles, command-line snippets."""

from __future__ import annotations

import json
import shlex
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


#: Suggestions for the picker's Region field (any Region name is accepted).
CONSOLE_REGIONS = {
    "aws": (
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-east-1",
        "me-central-1",
        "af-south-1",
    ),
    "aws-us-gov": ("us-gov-west-1", "us-gov-east-1"),
    "aws-cn": ("cn-north-1", "cn-northwest-1"),
}


def _variables(creds: Credentials) -> list[tuple[str, str]]:
    return [
        ("AWS_ACCESS_KEY_ID", creds.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key),
        ("AWS_SESSION_TOKEN", creds.session_token),
        ("AWS_CREDENTIAL_EXPIRATION", creds.expiration_iso()),
    ]


def _fish_quote(value: str) -> str:
    """fish: inside single quotes only \\' and \\\\ are escapes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _powershell_quote(value: str) -> str:
    """PowerShell: a single-quoted string is verbatim; a quote inside is doubled."""
    return "'" + value.replace("'", "''") + "'"


def _cmd_safe(value: str) -> bool:
    """cmd.exe has no quoting that survives every character; STS's values are base64 and an
    ISO time, which `set "NAME=value"` carries as they are."""
    return not any(c in value for c in '"%^!\r\n')


def exports(creds: Credentials) -> list[dict[str, str]]:
    """The same four variables for each shell, as (id, label, text) tabs; no cmd tab for a
    value cmd.exe would change."""
    pairs = _variables(creds)
    shells = [
        {"id": "bash", "label": "bash, zsh", "text": shell_exports(creds)},
        {
            "id": "fish",
            "label": "fish",
            "text": "".join(f"set -gx {k} {_fish_quote(v)}\n" for k, v in pairs),
        },
        {
            "id": "powershell",
            "label": "PowerShell",
            "text": "".join(f"$Env:{k} = {_powershell_quote(v)}\n" for k, v in pairs),
        },
    ]
    if all(_cmd_safe(v) for _, v in pairs):
        text = "".join(f'set "{k}={v}"\r\n' for k, v in pairs)
        shells.append({"id": "cmd", "label": "Windows cmd", "text": text})
    return shells


def cli_snippets(
    creds: Credentials, grant: RoleGrant, *, base_url: str = "", tokens: bool = False
) -> dict[str, object]:
    """Everything the command-line page shows: these credentials as one-off exports, and the
    lasting way, `broker login` then `broker configure` (a profile whose credential_process
    renews itself from the terminal's broker session). `tokens` when an OIDC issuer is
    configured, so `broker credential-process` can fetch the same role with a token instead."""
    profile = grant.name
    url = shlex.quote(base_url)
    command = login = session_profile = ""
    if base_url:
        login = f"broker login --url {url}\nbroker configure --url {url}\n"
        session_profile = (
            f"[profile {profile}]\ncredential_process = broker credential-process"
            f" --url {url} --role {shlex.quote(profile)}\n"
        )
    if tokens and base_url:
        command = (
            f"[profile {profile}]\ncredential_process = broker credential-process"
            f" --url {url} --role {shlex.quote(profile)}"
            " --token-command 'your-token-command'\n"
        )
    return {
        "role_arn": grant.arn,
        "profile": profile,
        "expiration": creds.expiration_iso(),
        "expiration_epoch_ms": int(creds.expiration.timestamp() * 1000),
        "env": shell_exports(creds),
        "exports": exports(creds),
        "credentials_file": (
            f"[{profile}]\n"
            f"aws_access_key_id = {creds.access_key_id}\n"
            f"aws_secret_access_key = {creds.secret_access_key}\n"
            f"aws_session_token = {creds.session_token}\n"
        ),
        "credential_process_json": json.dumps(process_json(creds), indent=2) + "\n",
        "login_commands": login,
        "credential_process_config": session_profile,
        "credential_process_command": command,
    }
