"""Wires the setup helper's commands into `broker`: thumbprint, setup …, config check."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `thumbprint`, `setup` and `config` on the top-level parser."""
