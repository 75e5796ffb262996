"""STS's limits on what a role session carries: session tags, SourceIdentity, durations, packed size.

Sources:
- id_session-tags.md ("Passing session tags in AWS STS"): at most 50 session tags, keys at most
  128 and values at most 256 characters, one value per tag, keys unique regardless of case
  (AssumeRole's Tags reference), transitive keys name passed tags, and a packed size limit for
  session policies and tags combined, reported as a percentage (PackedPolicyTooLarge). STS
  answers tags it cannot accept with ValidationError ("Unable to validate tags", as seen from
  AWS sign-in).
- id_credentials_temp_control-access_monitor.md and troubleshoot_saml.md: SourceIdentity is
  2-64 characters of [a-zA-Z_0-9+=,.@-] and does not begin with "aws:"; STS answers
  InvalidIdentityToken otherwise.
- API_AssumeRoleWithSAML / API_AssumeRoleWithWebIdentity (DurationSeconds): 900 seconds up to
  the role's MaxSessionDuration, else ValidationError "The requested DurationSeconds exceeds the
  MaxSessionDuration set for this role." (troubleshoot_saml.md). The session ends at the
  earliest of that, the SAML SessionDuration attribute and SessionNotOnOrAfter
  (id_roles_providers_create_saml_assertions.md).

AWS does not document its packing. The stand-in packs the policy, the policy ARNs and the tags
with zlib and allows PACKED_LIMIT bytes: a full 2,048-character policy fits on its own, fifty
tags at their maximum sizes do not.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from broker_demo.state import StsFault

MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
TAG_KEY = re.compile(r"[\w\s.:/=+\-@]{1,128}")  # tagKeyType: [\p{L}\p{Z}\p{N}_.:/=+\-@]+
TAG_VALUE = re.compile(r"[\w\s.:/=+\-@]{0,256}")  # tagValueType
SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
PACKED_LIMIT = 4096
_SOURCE_IDENTITY_MESSAGE = (
    'Source Identity must match [a-zA-Z_0-9+=,.@-]{2,64} and not begin with "aws:"'
)


@dataclass(frozen=True, slots=True)
class SessionTags:
    tags: tuple[tuple[str, str], ...] = ()
    transitive: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tags)


def _bad_tags(why: str) -> StsFault:
    return StsFault("ValidationError", f"Unable to validate tags: {why}")


def session_tags(
    tags: Iterable[tuple[str, list[str]]], transitive: Iterable[str] = ()
) -> SessionTags:
    """Tags as the IdP sent them (a key and its values); raises STS's error if STS would."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, values in tags:
        if len(values) != 1:
            raise _bad_tags(f"session tag {key!r} must have exactly one value")
        value = values[0]
        if len(key) > MAX_TAG_KEY or not TAG_KEY.fullmatch(key):
            raise _bad_tags(
                f"session tag keys are 1-{MAX_TAG_KEY} characters of letters, digits, spaces and _.:/=+-@"
            )
        if len(value) > MAX_TAG_VALUE or not TAG_VALUE.fullmatch(value):
            raise _bad_tags(
                f"session tag values are 0-{MAX_TAG_VALUE} characters of letters, digits, spaces and _.:/=+-@"
            )
        if key.casefold() in seen:
            raise _bad_tags(f"duplicate session tag key {key!r} (tag keys are not case sensitive)")
        seen.add(key.casefold())
        found.append((key, value))
    if len(found) > MAX_TAGS:
        raise _bad_tags(f"{len(found)} session tags; at most {MAX_TAGS}")
    keys = tuple(transitive)
    missing = [k for k in keys if k.casefold() not in seen]
    if missing:
        raise _bad_tags(f"transitive tag key {missing[0]!r} is not a session tag")
    return SessionTags(tuple(found), keys)


def source_identity(value: str | None) -> str | None:
    if value is None:
        return None
    if not SOURCE_IDENTITY.fullmatch(value) or value.lower().startswith("aws:"):
        raise StsFault("InvalidIdentityToken", _SOURCE_IDENTITY_MESSAGE)
    return value


def packed_percent(policy: str | None, policy_arns: tuple[str, ...], tags: SessionTags) -> int:
    """How much of the packed limit the session policies and tags use; PackedPolicyTooLarge over it."""
    if policy is None and not policy_arns and not tags:
        return 0
    # "The transitive status of a session tag does not impact its packed binary size."
    plain = "\n".join([policy or "", *policy_arns, *(f"{k}={v}" for k, v in tags.tags)])
    percent = max(1, len(zlib.compress(plain.encode(), 9)) * 100 // PACKED_LIMIT)
    if percent > 100:
        what = "session policies and session tags" if policy or policy_arns else "session tags"
        raise StsFault(
            "PackedPolicyTooLarge", f"Packed size of {what} consumes {percent}% of allotted space."
        )
    return percent


def session_end(
    now: datetime,
    requested: int,
    max_session_duration: int,
    *,
    saml_session_duration: int | None = None,
    not_on_or_after: datetime | None = None,
) -> datetime:
    """When the role session's credentials expire; refuses a DurationSeconds over the role's max."""
    if requested > max_session_duration:
        raise StsFault(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )
    seconds = min(requested, saml_session_duration or requested)
    ends = now + timedelta(seconds=seconds)
    return min(ends, not_on_or_after) if not_on_or_after is not None else ends
