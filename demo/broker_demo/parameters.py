"""STS request parameters: what each AssumeRole* action accepts, checked the way STS checks it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from broker_demo.query import Constraints
from broker_demo.state import StsFault

ROLE_ARN = re.compile(
    r"arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/"
    r"(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
SAML_PROVIDER_ARN = re.compile(
    r"arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):saml-provider/(?P<name>[\w.-]{1,128})",
    re.ASCII,
)
POLICY_ARN = re.compile(
    r"arn:(?P<partition>[\w-]+):iam::(?:\d{12}|aws):policy/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,128}",
    re.ASCII,
)
SESSION_NAME = re.compile(r"[\w+=,.@-]*", re.ASCII)
POLICY_CHARS = re.compile(r"[\t\n\r\x20-\xff]+")
POLICY_ARN_KEY = re.compile(r"PolicyArns\.member\.(\d{1,3})\.arn")
DEFAULT_DURATION = 3600


@dataclass(slots=True)
class Seen:
    """What the call log will say about a request; filled in as values become known.
    Field names match `StsCall` so one becomes the other."""

    action: str = ""
    role_arn: str | None = None
    principal_arn: str | None = None
    session_name: str | None = None
    duration_seconds: int | None = None  # as requested; None when the default applied
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    subject: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, str]) -> Seen:
        duration = params.get("DurationSeconds")
        numbered = sorted(
            (int(m.group(1)), value)
            for key, value in params.items()
            if (m := POLICY_ARN_KEY.fullmatch(key))
        )
        return cls(
            action=params.get("Action", ""),
            role_arn=params.get("RoleArn"),
            principal_arn=params.get("PrincipalArn"),
            session_name=params.get("RoleSessionName"),
            duration_seconds=int(duration)
            if duration and duration.isdigit() and len(duration) < 10
            else None,
            policy=params.get("Policy"),
            policy_arns=tuple(value for _, value in numbered),
        )


@dataclass(frozen=True, slots=True)
class Role:
    arn: str
    account: str
    name: str  # the last path segment, as it appears in assumed-role ARNs


def common_constraints(params: dict[str, str], c: Constraints, seen: Seen) -> int:
    """Length/range constraints every AssumeRole* action shares; returns DurationSeconds."""
    c.length("roleArn", params.get("RoleArn"), 20, 2048)
    duration = c.integer(
        "durationSeconds", params.get("DurationSeconds"), 900, 43200, DEFAULT_DURATION
    )
    policy = params.get("Policy")
    if policy is not None:
        c.length("policy", policy, 1, 2048, echo=False)
        c.pattern("policy", policy, POLICY_CHARS, echo=False)
    c.count("policyArns", seen.policy_arns, 10)
    for i, arn in enumerate(seen.policy_arns, 1):
        c.length(f"policyArns.{i}.member.arn", arn, 20, 2048)
    return duration


def check_role_and_policies(params: dict[str, str], seen: Seen, partition: str) -> Role:
    """What follows the constraints: a role ARN in this partition, policy ARNs, policy JSON."""
    match = ROLE_ARN.fullmatch(params["RoleArn"])
    if match is None:
        raise StsFault("ValidationError", "Request ARN is invalid")
    if match["partition"] != partition:
        raise StsFault(
            "ValidationError",
            f"Request ARN is invalid: partition {match['partition']} is not {partition}",
        )
    for arn in seen.policy_arns:
        found = POLICY_ARN.fullmatch(arn)
        if found is None or found["partition"] != partition:
            raise StsFault("InvalidParameterValue", f"The policy ARN {arn} is invalid")
    policy = params.get("Policy")
    if policy is not None:
        try:
            document = json.loads(policy)
        except ValueError as exc:
            raise StsFault("MalformedPolicyDocument", "Syntax errors in policy.") from exc
        if not isinstance(document, dict) or "Statement" not in document:
            raise StsFault("MalformedPolicyDocument", "The policy document has no Statement")
    return Role(arn=match.group(0), account=match["account"], name=match["name"])
