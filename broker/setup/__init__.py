"""The administrator's setup helper: thumbprints, IAM identity providers, trust policies, config check."""

from __future__ import annotations

from broker.errors import SetupError

__all__ = ["SetupError"]
