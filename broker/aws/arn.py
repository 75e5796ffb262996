"""IAM ARNs and STS's limits on sessions: the shapes AWS accepts, checked before any call."""

from __future__ import annotations

import re

ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-us-gov|aws-cn):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}",
    re.ASCII,
)
PROVIDER_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-us-gov|aws-cn):iam::(?P<account>\d{12}):(?:saml-provider/[\w.-]{1,128}|oidc-provider/\S+)",
    re.ASCII,
)
# STS DurationSeconds: 900 s up to the role's MaxSessionDuration, itself at most 12 hours.
MAX_SESSION_SECONDS = 43200
MIN_SESSION_SECONDS = 900
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]", re.ASCII)


def account_of(arn: str) -> str:
    return arn.split(":")[4]


def session_name(raw: str) -> str:
    """STS's RoleSessionName is [\\w+=,.@-]{2,64}: replace the rest, trim, pad."""
    name = _SESSION_NAME_BAD.sub("-", raw)[:64]
    return name if len(name) >= 2 else (name + "--")[:2]


def clamp_duration(requested: int | None, role_max: int) -> int:
    """min(requested, role maximum, 43200), never under STS's 900."""
    limit = min(role_max, MAX_SESSION_SECONDS)
    return max(MIN_SESSION_SECONDS, min(requested or limit, limit))
