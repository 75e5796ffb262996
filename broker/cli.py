"""The `broker` command: serve | explain | credential-process | thumbprint | setup … | config check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from broker.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="AWS federation broker")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from broker.setup.cli import add_commands as add_setup_commands

    add_setup_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"broker: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
