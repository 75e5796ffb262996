"""`broker demo`: the command this package adds to the broker's CLI."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def register(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="broker demo",
        description="try the broker on this machine: demo IdP, demo CI issuer, AWS stand-in",
    )
    parser.add_argument("--port", type=int, default=8080, help="the broker's port (default 8080)")
    parser.add_argument("--open", action="store_true", help="open the sign-in page in a browser")
    args = parser.parse_args(list(argv))
    from broker_demo.run import run_demo

    return run_demo(port=args.port, open_browser=args.open)
