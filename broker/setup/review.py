"""Per-role findings for `broker config check`: a subject IAM can pin, limits only the broker enforces, a named account."""

from __future__ import annotations

from collections.abc import Iterator

from broker.config import Config
from broker.setup import SetupError
from broker.setup.enforcement import REMEDY
from broker.setup.trust_policy import trust_policy


def review(config: Config) -> Iterator[tuple[str, str, str]]:
    """(level, where, message) for each role a rule grants."""
    for name in config.roles:
        where = f"roles.{name}"
        try:
            policy = trust_policy(config, name, allow_any_subject=True)
        except SetupError:
            continue  # no rule grants it: the static checks say so already
        try:
            trust_policy(config, name)
        except SetupError as exc:
            reasons = exc.extra.get("unpinned") or [exc.detail]
            yield (
                "warning",
                where,
                "no subject IAM can check, so in pass-through any token of the IdP could "
                "assume it directly with STS (`setup trust-policy` refuses it): "
                + "; ".join(reasons),
            )
        if policy.broker_only:
            yield (
                "warning",
                where,
                "enforced by the broker only (pass-through): "
                + "; ".join(policy.broker_only)
                + f". Note: {REMEDY}",
            )


def unnamed_accounts(config: Config) -> Iterator[tuple[str, str, str]]:
    """People pick roles by account name: a role's account without one shows as a number."""
    roles: dict[str, list[str]] = {}
    for name, role in config.roles.items():
        if config.account_name(role.account_id) is None:
            roles.setdefault(role.account_id, []).append(name)
    for account, names in sorted(roles.items()):
        yield (
            "warning",
            "accounts",
            f"account {account} (roles {', '.join(names)}) has no name: "
            "`broker setup accounts` reads the names from AWS Organizations",
        )
