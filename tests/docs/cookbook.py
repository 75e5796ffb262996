"""The rule cookbook's sources: docs/rules.md's tagged code blocks and docs/cookbook/broker.yaml.

A block opens with three backticks, a language and one `tag=name`:
`yaml rules=IDP` (that IdP's rules), `json header=IDP` / `json claims=IDP` (its documented
token), `json policy=ROLE` (what `broker setup trust-policy` prints for the role).

    .venv/bin/python -m tests.docs.cookbook    rewrites every policy block from the command
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from broker.cli import main

ROOT = Path(__file__).resolve().parents[2]
RULES_MD = ROOT / "docs" / "rules.md"
CONFIG = ROOT / "docs" / "cookbook" / "broker.yaml"
_BLOCK = re.compile(
    r"^```(?P<lang>\w+) (?P<tag>\w+)=(?P<name>[\w.-]+)\n(?P<body>.*?)^```$", re.M | re.S
)


@dataclass(frozen=True)
class Block:
    tag: str
    name: str
    body: str
    start: int  # offsets of the body in the file
    end: int


def blocks(text: str, tag: str) -> dict[str, Block]:
    out: dict[str, Block] = {}
    for m in _BLOCK.finditer(text):
        if m["tag"] != tag:
            continue
        if m["name"] in out:
            raise ValueError(f"two `{tag}={m['name']}` blocks in {RULES_MD.name}")
        out[m["name"]] = Block(tag, m["name"], m["body"], m.start("body"), m.end("body"))
    return out


def trust_policy_output(role: str) -> str:
    """Exactly what `broker setup trust-policy --config CONFIG --role ROLE` prints; for a role
    whose rules pin no subject IAM can check, the command refuses, and the page shows what it
    prints with `--allow-any-subject`."""
    for extra in ([], ["--allow-any-subject"]):
        out = io.StringIO()
        argv = ["setup", "trust-policy", "--config", str(CONFIG), "--role", role, *extra]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(argv)
        if code == 0:
            return out.getvalue()
    raise RuntimeError(f"broker setup trust-policy --role {role} exited {code}")


def regenerate() -> None:
    text = RULES_MD.read_text(encoding="utf-8")
    for block in sorted(blocks(text, "policy").values(), key=lambda b: -b.start):
        text = text[: block.start] + trust_policy_output(block.name) + text[block.end :]
    RULES_MD.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    regenerate()
