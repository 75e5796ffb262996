"""`broker configure`'s edit of the AWS config file: one marked block per broker URL that it owns
and rewrites; every byte outside the block is left as it was.

Pure text in, text out (`apply`); `write` puts the result in place atomically."""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: What a profile may be called here: a role name's characters (IAM's [\w+=,.@-]).
PROFILE_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_SECTION = re.compile(r"\s*\[\s*(?:profile\s+)?([^\]]*?)\s*\]")


class BlockError(Exception):
    """The file's block is damaged (a start marker without its end); nothing is written."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    role: str  # what --role gets: the role's name, or its ARN when names repeat
    region: str | None = None


def markers(url: str) -> tuple[str, str]:
    return (
        f"# >>> broker ({url}) — managed by broker configure >>>",
        f"# <<< broker ({url}) <<<",
    )


def render(url: str, profiles: Sequence[Profile], command: str) -> str:
    start, end = markers(url)
    lines = [start]
    for p in profiles:
        lines.append(f"[profile {p.name}]")
        lines.append(f"credential_process = {command} --role {shlex.quote(p.role)}")
        if p.region:
            lines.append(f"region = {p.region}")
        lines.append("")
    lines.append(end)
    return "\n".join(lines) + "\n"


def split(text: str, url: str) -> tuple[str, str | None, str]:
    """(before, the block or None, after): the block from its start line to its end line."""
    start, end = markers(url)
    lines = text.splitlines(keepends=True)
    bare = [line.rstrip("\r\n") for line in lines]
    starts = [i for i, line in enumerate(bare) if line == start]
    if not starts:
        if end in bare:
            raise BlockError(f"the file has the end of broker's block for {url} but not its start")
        return text, None, ""
    first = starts[0]
    ends = [i for i, line in enumerate(bare) if line == end and i > first]
    if not ends:
        raise BlockError(f"broker's block for {url} has no end line ({end!r})")
    last = ends[0]
    if len(starts) > 1 or len([line for line in bare if line == end]) > 1:
        raise BlockError(f"the file has more than one block for {url}")
    return "".join(lines[:first]), "".join(lines[first : last + 1]), "".join(lines[last + 1 :])


def profile_names(text: str) -> set[str]:
    """Profiles a config file defines: `[profile NAME]`, and `[default]`."""
    names = set()
    for line in text.splitlines():
        found = _SECTION.fullmatch(line)
        if found and found.group(1):
            names.add(found.group(1))
    return names


def apply(text: str, url: str, profiles: Sequence[Profile], command: str) -> tuple[str, list[str]]:
    """The file with broker's block for `url` rewritten (or appended), and the profile names
    left out because the file already defines them outside the block: those are never
    overwritten."""
    before, block, after = split(text, url)
    taken = profile_names(before + after)
    skipped = [p.name for p in profiles if p.name in taken or not PROFILE_NAME.fullmatch(p.name)]
    kept = [p for p in profiles if p.name not in skipped]
    new_block = render(url, kept, command)
    if block is not None:
        return before + new_block + after, skipped
    if not text:
        return new_block, skipped
    gap = ("" if text.endswith("\n") else "\n") + "\n"
    return text + gap + new_block, skipped


def config_path() -> Path:
    """$AWS_CONFIG_FILE, as the AWS CLI and SDKs read it, else ~/.aws/config."""
    configured = os.environ.get("AWS_CONFIG_FILE")
    return Path(configured).expanduser() if configured else Path.home() / ".aws" / "config"


def read(path: Path) -> str:
    """Bytes that are not UTF-8 survive the round trip (surrogateescape)."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return ""


def write(path: Path, text: str) -> None:
    """Atomically, through a symlink to its target, keeping the file's mode (0600 if new)."""
    target = path.resolve()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".broker-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8", "surrogateescape"))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
