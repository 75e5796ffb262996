"""Reading the YAML file: duplicate keys refused, then validated into a Config."""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from broker.config.messages import format_errors
from broker.config.model import Config
from broker.config.rules import AccountsFile, account_keys
from broker.errors import ConfigError

_TOO_DEEP = "invalid configuration: nested too deeply"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            continue  # construct_mapping refuses it, with the place in the file
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_config(data: Any, source: str | os.PathLike[str] | None = None) -> Config:
    """Validate a config read from `source` (which `accounts_file` is relative to)."""
    if not isinstance(data, dict):
        raise ConfigError("invalid configuration: the file must be a YAML mapping")
    try:
        return Config.model_validate(_with_accounts_file(data, source))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
    except RecursionError:
        raise ConfigError(_TOO_DEEP) from None


def accounts_file_path(ref: str, source: str | os.PathLike[str] | None) -> Path:
    """`accounts_file` as written, relative to the config file that names it."""
    path = Path(ref).expanduser()
    if not path.is_absolute() and source is not None:
        path = Path(source).parent / path
    return path


def read_accounts_file(path: Path) -> AccountsFile:
    """The accounts file, validated on its own so that an error names it."""
    data = read_yaml(path, "accounts file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an accounts file must be a YAML mapping with `accounts:`")
    try:
        return AccountsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{path}: " + format_errors(exc).replace(" configuration", " accounts file", 1)
        ) from None


def _with_accounts_file(data: dict[Any, Any], source: str | os.PathLike[str] | None) -> Any:
    ref = data.get("accounts_file")
    if not isinstance(ref, str) or not ref:
        return data  # absent, or a wrong type the model reports with its key
    path = accounts_file_path(ref, source)
    listed = read_accounts_file(path).accounts
    try:
        own = account_keys(data.get("accounts") or {})
    except ValueError:
        return data  # the model reports the bad key
    if not isinstance(own, dict):
        return data
    both = sorted(set(own) & set(listed))
    if both:
        raise ConfigError(
            f"invalid configuration:\n  accounts: {', '.join(both)} also in accounts_file "
            f"{path}: keep each account in one place"
        )
    return {**data, "accounts": {**own, **listed}}


def read_yaml(path: str | os.PathLike[str], what: str = "configuration") -> Any:
    """A YAML file, duplicate keys refused; every failure a ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes nested nodes recursively
        raise ConfigError(f"{path}: {_TOO_DEEP}") from None
    except Exception as exc:  # library boundary: PyYAML's constructors fail on a value that
        # does not fit an explicit tag (`!!int x`, `!!timestamp x`) with ValueError and kin
        raise ConfigError(
            f"{path}: not valid YAML: a value does not fit its tag ({type(exc).__name__})"
        ) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the YAML file from `path`, else $BROKER_CONFIG."""
    path = path or os.environ.get("BROKER_CONFIG")
    if not path:
        raise ConfigError("no configuration: pass --config FILE or set BROKER_CONFIG")
    return parse_config(read_yaml(path), path)
