"""How the setup commands answer: a JSON document with --json or lines of text, aligned
tables, and failures on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def net_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    p.add_argument("--ca-file", metavar="PEM", help="trust only these CAs when fetching documents")


def emit(args: argparse.Namespace, doc: dict[str, Any], human: list[str]) -> None:
    print(json.dumps(doc, indent=2) if args.json else "\n".join(human))


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return [
        "  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]


def fail(message: str) -> int:
    print(f"broker: {message}", file=sys.stderr)
    return 1
