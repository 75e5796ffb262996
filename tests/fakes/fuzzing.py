"""What every fuzz target shares: the stable codes a refusal may carry, and a tally of
examples per target and outcome that bench/fuzz.py prints after a long run."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import strategies as st

from broker import errors
from tests.fakes.logs import LogCapture

#: target -> outcome (a code, "ok", or a status) -> examples
TALLY: defaultdict[str, Counter[str]] = defaultdict(Counter)


def record(target: str, outcome: str) -> None:
    TALLY[target][outcome] += 1


def _codes(cls: type[errors.BrokerError]) -> set[str]:
    out = {cls.code}
    for sub in cls.__subclasses__():
        out |= _codes(sub)
    return out


#: Every stable code a refusal may carry; ConfigError never reaches a client.
CLIENT_CODES = frozenset(_codes(errors.BrokerError) - {"ConfigError", "InternalError"})


def check_refusal(exc: errors.BrokerError) -> str:
    """A refusal as the property wants it: a 4xx and one of the stable codes."""
    assert 400 <= exc.status < 500, f"{exc.code} {exc.status}: {exc.log_detail}"
    assert exc.code in CLIENT_CODES, exc.code
    return exc.code


class Quiet(LogCapture):
    """Every record, for the property "never a traceback, never an error line"."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.exc_info or record.levelno >= logging.ERROR:
            self.bad.append(self.lines[-1] if self.lines else record.getMessage())


@contextmanager
def no_tracebacks() -> Iterator[Quiet]:
    """Fail if anything logged an error or a traceback while the block ran."""
    quiet = Quiet()
    root = logging.getLogger()
    root.addHandler(quiet)
    try:
        yield quiet
    finally:
        root.removeHandler(quiet)
    assert not quiet.bad, quiet.bad[:3]
    assert not any("Traceback" in line for line in quiet.lines)


# ---- shared strategies -----------------------------------------------------------------------

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
#: Text a form or query field might carry: anything, or something shaped like what is wanted.
field_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=B64 + " \r\n-_.%", max_size=120),
    st.sampled_from(
        [
            "",
            " ",
            "/",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/%2F%2Fevil.example",
            "/\t/evil.example",
            "javascript:alert(1)",
            "0",
            "-1",
            "899",
            "900",
            "43200",
            "43201",
            "1e3",
            "0x384",
            "\uff11\uff12\uff10\uff10",  # fullwidth digits: int() reads them
            "9" * 400,
            "\x00",
            "json",
            "process",
            "env",
            "deployer",
            "arn:aws:iam::111122223333:role/deployer",
        ]
    ),
)
