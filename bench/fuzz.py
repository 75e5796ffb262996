"""The fuzz set, long: every `fuzz`-marked property test with many examples; counts and time.

    .venv/bin/python bench/fuzz.py                       # 20,000 examples per test
    .venv/bin/python bench/fuzz.py --examples 2000 -k saml

scripts/test runs the same tests under the bounded "ci" profile (tests/conftest.py).
Prints, per target, how many inputs it was given and what came of them (the refusal codes,
or "accepted"/"ok" where an input was legitimately good), then the wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="per test (default 20000)")
    parser.add_argument("-k", dest="select", help="only tests matching this pytest -k expression")
    parser.add_argument("--seed", help="Hypothesis seed, to repeat a run")
    parser.add_argument("--top", type=int, default=6, help="outcomes shown per target")
    args = parser.parse_args(argv)

    # tests/conftest.py registers the "long" profile from these (Hypothesis must not be imported
    # here before pytest, or pytest cannot rewrite its asserts).
    os.environ["BROKER_HYPOTHESIS_PROFILE"] = "long"
    os.environ["BROKER_FUZZ_EXAMPLES"] = str(args.examples)
    sys.path.insert(0, str(ROOT))
    pytest_args = ["-m", "fuzz", "-q", "-p", "no:cacheprovider"]
    if args.select:
        pytest_args += ["-k", args.select]
    if args.seed:
        pytest_args += [f"--hypothesis-seed={args.seed}"]
    started = time.perf_counter()
    status = pytest.main([*pytest_args, str(ROOT / "tests")])
    elapsed = time.perf_counter() - started

    from tests.fakes.fuzzing import TALLY

    total = sum(sum(c.values()) for c in TALLY.values())
    print(f"\nfuzz: {args.examples} examples a test asked; {total} inputs run in {elapsed:.0f} s")
    width = max((len(t) for t in TALLY), default=10)
    for target in sorted(TALLY):
        outcomes = TALLY[target]
        shown = ", ".join(f"{code} {n}" for code, n in outcomes.most_common(args.top))
        more = len(outcomes) - args.top
        print(
            f"  {target:<{width}} {sum(outcomes.values()):>7}  {shown}{f', +{more} more' if more > 0 else ''}"
        )
    return int(status)


if __name__ == "__main__":
    raise SystemExit(main())
