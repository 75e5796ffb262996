"""Property: whatever the configuration says, loading it gives a Config or a ConfigError naming
what is wrong; never another exception (`broker serve` would print a traceback)."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from broker.config import Config, load_config, parse_config
from broker.errors import ConfigError
from tests.fakes.fuzzing import json_values, record, scalars

pytestmark = pytest.mark.fuzz

VALID: dict[str, Any] = {
    "server": {"base_url": "https://broker.example.com", "max_body_bytes": 262144},
    "aws": {"partition": "aws", "region": "eu-west-1", "sts_endpoint": "http://127.0.0.1:9000"},
    "store": {"url": "memory://"},
    "identity_providers": {
        "gh": {
            "type": "oidc",
            "issuer": "https://token.actions.githubusercontent.com",
            "audiences": ["sts.amazonaws.com"],
            "session_name": "gh-{repository}",
        },
        "corp": {
            "type": "saml",
            "metadata_url": "https://idp.example.com/metadata",
            "metadata_signing_certificates": ["MIIB"],
        },
    },
    "accounts": {"111122223333": {"name": "Production"}},
    "roles": {
        "deployer": {
            "arn": "arn:aws:iam::111122223333:role/deployer",
            "session_policy": '{"Version": "2012-10-17", "Statement": []}',
        }
    },
    "rules": [
        {
            "name": "deployers",
            "idp": "gh",
            "when": {"claim": "repository", "regex": "^org/(?P<repo>[a-z]+)$"},
            "grant": ["deployer", {"arn": "arn:aws:iam::111122223333:role/{repo}"}],
        }
    ],
}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


PATHS = list(_paths(VALID))[1:]


def loaded(call: Any, target: str) -> Config | None:
    try:
        config = call()
    except ConfigError as exc:
        detail = exc.detail
        record(target, "ConfigError")
        assert detail.strip(), "a ConfigError says what is wrong"
        return None
    assert isinstance(config, Config)
    record(target, "ok")
    return config


@given(json_values)
def test_parse_any_structure(data: Any) -> None:
    loaded(lambda: parse_config(data), "config-structure")


@given(
    st.lists(
        st.tuples(st.sampled_from(PATHS), json_values | scalars | st.just(None)),
        min_size=1,
        max_size=3,
    )
)
def test_parse_the_valid_config_with_any_value_replaced(edits: list[tuple[Any, Any]]) -> None:
    """Mostly valid, so every validator after the first one runs too."""
    data = copy.deepcopy(VALID)
    for path, value in edits:
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced a parent
    loaded(lambda: parse_config(data), "config-near-valid")


YAML_BITS = [
    "identity_providers:",
    "  gh: {type: oidc, issuer: https://x, audiences: [a]}",
    "a: &x [1, 2]",
    "b: *x",
    "c: *undefined",
    "<<: {a: 1}",
    "? [complex, key]\n: 1",
    "{[1]: 2}",
    "!!python/object/apply:os.system [id]",
    "!!binary AAAA",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!timestamp 2001-12-14",
    "!!timestamp",
    "!!int",
    "!!float",
    "!!bool",
    "!!map",
    "!!seq",
    "!!str",
    "!!null",
    "!!pairs",
    "!<tag:yaml.org,2002:int>",
    "!local",
    ".nan",
    ".inf",
    "0o17",
    "1_000",
    "0x1f",
    "~",
    "'quoted: x'",
    '"\\x00\\u2028"',
    "- a\n- b",
    "--- \n...",
    "%YAML 1.1\n---",
    "a: |\n  block\n",
    "\t",
    "\ufeff",
    "a: b: c",
    "[",
    "}",
]
yamlish = st.lists(st.sampled_from(YAML_BITS) | st.text(max_size=12), min_size=1, max_size=8).map(
    "\n".join
)


def load_text(text: str | bytes) -> Config | None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "broker.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        return loaded(lambda: load_config(path), "config-yaml")


@given(yamlish)
def test_load_any_yamlish_text(text: str) -> None:
    load_text(text)


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_load_any_text(text: str | bytes) -> None:
    load_text(text)


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_a_config_error(opener: str) -> None:
    """PyYAML composes nested nodes recursively: past Python's recursion limit it raised
    RecursionError, which `broker serve` printed as a traceback."""
    depth = 2500
    if opener == "- ":
        text = "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "x\n"
    else:
        text = (
            "identity_providers: " + opener * depth + "1" + {"[": "]", "{a: ": "}"}[opener] * depth
        )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "broker.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="nested too deeply"):
            load_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "? [complex, key]\n: 1",
        "{[1]: 2}",
        "a: {? {b: 1}: 2}",
        # Found by bench/fuzz.py: PyYAML's constructors raise on a value that does not fit
        # its explicit tag.
        "a: !!timestamp 2001-12-14\n  !!python/object/apply:os.system [id]",
        "a: !!timestamp x",
        "a: !!timestamp 2001-13-45",
        "a: !!int x",
        "a: !!int 0b2",
        "a: !!float 1:x",
        "a: !!bool x",
        "a: !!map [1]",
    ],
)
def test_a_complex_key_is_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "broker.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_config(path)


def test_the_valid_config_is_valid() -> None:
    assert isinstance(parse_config(copy.deepcopy(VALID)), Config)
    assert isinstance(parse_config(yaml.safe_load(yaml.safe_dump(VALID))), Config)
    assert os.sep  # the YAML round trip above is what load_config reads
