"""AWS's limits on the session attributes the broker signs: session tags and SourceIdentity.

Sources, each check below names its own:
- STS API Reference, "Tag": a key is 1-128 characters of [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@], a value
  0-256 of the same set.
- IAM User Guide, "Pass session tags in AWS STS": at most 50 session tags; keys are not case
  sensitive (Department and department are the same tag); TransitiveTagKeys name passed tags.
- IAM User Guide, "Rules for tagging in IAM and AWS STS": the `aws:` prefix is reserved.
- STS API Reference, AssumeRole / AssumeRoleWithSAML "SourceIdentity": 2-64 characters of
  [\\w+=,.@-]; a value that begins with `aws:` is reserved for AWS.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MAX_SESSION_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MIN_SOURCE_IDENTITY, MAX_SOURCE_IDENTITY = 2, 64
RESERVED_PREFIX = "aws:"
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
SOURCE_IDENTITY_CHARS = re.compile(r"[\w+=,.@-]*", re.ASCII)


def tag_characters_ok(text: str) -> bool:
    """STS "Tag" pattern: Unicode letters (L), separators (Z), numbers (N) and _.:/=+-@."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def reserved(text: str) -> bool:
    return text[: len(RESERVED_PREFIX)].lower() == RESERVED_PREFIX


def tag_key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_TAG_KEY:
        return f"a session tag key is 1 to {MAX_TAG_KEY} characters, not {len(key)}"
    if not tag_characters_ok(key):
        return "a session tag key holds only letters, digits, spaces and _.:/=+-@"
    if reserved(key):
        return "session tag keys beginning with 'aws:' are reserved for AWS"
    return None


def tag_value_problem(value: str) -> str | None:
    if len(value) > MAX_TAG_VALUE:
        return f"a session tag value is at most {MAX_TAG_VALUE} characters, not {len(value)}"
    if not tag_characters_ok(value):
        return "a session tag value holds only letters, digits, spaces and _.:/=+-@"
    return None


def source_identity_problem(value: str) -> str | None:
    if not MIN_SOURCE_IDENTITY <= len(value) <= MAX_SOURCE_IDENTITY:
        return (
            f"SourceIdentity is {MIN_SOURCE_IDENTITY} to {MAX_SOURCE_IDENTITY} characters, "
            f"not {len(value)}"
        )
    if reserved(value):
        return "a SourceIdentity beginning with 'aws:' is reserved for AWS"
    if not SOURCE_IDENTITY_CHARS.fullmatch(value):
        return "SourceIdentity holds only ASCII letters, digits and _+=,.@-"
    return None


def tag_set_problems(keys: Sequence[str], transitive: Iterable[str]) -> list[str]:
    """The set as a whole: count, keys unique without regard to case, transitive keys passed."""
    problems = []
    if len(keys) > MAX_SESSION_TAGS:
        problems.append(f"{len(keys)} session tags; AWS allows {MAX_SESSION_TAGS}")
    folded: dict[str, str] = {}
    for key in keys:
        if key.lower() in folded:
            problems.append(
                f"session tag keys {folded[key.lower()]!r} and {key!r} differ only in case; "
                "AWS treats them as one"
            )
        folded.setdefault(key.lower(), key)
    for key in transitive:
        if key.lower() not in folded:
            problems.append(f"transitive tag {key!r} is not one of the session tags")
    return problems
