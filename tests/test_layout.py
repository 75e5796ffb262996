"""How the suite is laid out: no module imports a test module or a conftest."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEARCHED = ("tests", "bench")


def _python_files() -> Iterator[Path]:
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "node_modules" not in path.parts:
                yield path


def _package_of(path: Path) -> str:
    """The package a file's relative imports start from."""
    parts = path.relative_to(ROOT).parts[:-1]
    return ".".join(parts)


def imported(package: str, source: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every module an import in ``source`` names, relative ones resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from tests.flows import test_x` names a module too
                yield node.lineno, f"{base}.{alias.name}"


def is_test_module(name: str) -> bool:
    head, _, last = name.rpartition(".")
    in_suite = (head or last).split(".")[0] in SEARCHED
    return in_suite and (last.startswith("test_") or last == "conftest")


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in _python_files()
        for line, name in imported(_package_of(path), path.read_text())
        if is_test_module(name)
    ]
    assert not offences, "shared helpers belong in tests/fakes/:\n" + "\n".join(offences)


@pytest.mark.parametrize(
    ("source", "offends"),
    [
        ("from tests.flows.test_saml_console import SamlWorld", True),
        ("from tests.flows import test_saml_console", True),
        ("import tests.browser.conftest", True),
        ("from .conftest import screenshot", True),
        ("from ..saml.test_verify import CASES", True),
        ("from tests.fakes.saml_world import SamlWorld", False),
        ("from tests.fakes import servers", False),
        ("from .harness import forge", False),
        ("import test_something_else_entirely", False),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, offends: bool) -> None:
    names = [name for _, name in imported("tests.flows", source)]
    assert any(is_test_module(n) for n in names) is offends, names
