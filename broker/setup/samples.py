"""`broker config check --claims IDP=FILE`: the rules' claim paths against a real token's claims."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from broker.config import Config
from broker.mapping import unresolved_paths

if TYPE_CHECKING:
    from broker.setup.check import CheckReport


def parse_samples(items: list[str]) -> dict[str, str]:
    """`IDP=FILE` arguments → {idp: file}; raise ValueError naming a malformed one."""
    out: dict[str, str] = {}
    for item in items:
        idp, sep, path = item.partition("=")
        if not sep or not idp or not path:
            raise ValueError(f"--claims {item!r}: expected IDP=FILE")
        out[idp] = path
    return out


def check_samples(config: Config, samples: Mapping[str, str], report: CheckReport) -> None:
    """Warn about every claim path an IdP's rules read that its sample claims do not have."""
    for idp, path in samples.items():
        where = f"--claims {idp}"
        if idp not in config.identity_providers:
            report.error(where, f"no identity provider named {idp!r}")
            continue
        try:
            sample = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            report.error(where, f"cannot read {path}: {exc}")
            continue
        if not isinstance(sample, dict):
            report.error(where, f"{path} must hold a JSON object of claims")
            continue
        missing = unresolved_paths(config, idp, sample)
        for m in missing:
            report.warning(where, m.message())
        if not missing:
            report.ok(where, f"every claim path the rules for {idp} read is in {path}")
