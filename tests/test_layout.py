"""The tests mirror the overlay's modules, so that a module nobody tests fails here.

A module of overlays/kling_i2v has a test file named after it (`client.py` ->
tests/test_client.py, `_inputs.py` -> tests/test_inputs.py, `cli/_parser.py` ->
tests/cli/test_parser.py), or it is named on a "Covers:" line of the docstring of the test
file that exercises it, as a private module is through the public one that uses it. A
public module of the package itself (no underscore) always has its own file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "overlays" / "kling_i2v"
TESTS = REPO / "tests"


def overlay_modules() -> list[str]:
    """Every module of the overlay, as a path below the package: `_core.py`, `cli/_batch.py`."""
    return sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py"))


def own_test_file(module: str) -> Path | None:
    """Where a test file named after `module` lives (none for `__init__` and `__main__`)."""
    path = Path(module)
    if path.stem.startswith("__"):
        return None
    return TESTS.joinpath(*path.parent.parts, f"test_{path.stem.lstrip('_')}.py")


def covers_lines() -> dict[str, list[str]]:
    """Module -> the test files whose docstring names it on a "Covers:" line."""
    named: dict[str, list[str]] = {}
    for test in sorted(TESTS.rglob("test_*.py")):
        doc = ast.get_docstring(ast.parse(test.read_text(encoding="utf-8"))) or ""
        for block in re.findall(r"^Covers: (.+?)(?:\n\s*\n|\Z)", doc, re.MULTILINE | re.DOTALL):
            for module in re.findall(r"[\w/]+\.py", block):
                named.setdefault(module, []).append(test.relative_to(REPO).as_posix())
    return named


def test_the_layout_is_found() -> None:
    # literal examples, so that a walk that finds nothing cannot pass the tests below
    modules = overlay_modules()
    assert {"client.py", "errors.py", "_core.py", "cli/_parser.py", "testing/server.py"} <= set(modules)
    assert own_test_file("client.py") == TESTS / "test_client.py"
    assert own_test_file("_inputs.py") == TESTS / "test_inputs.py"
    assert own_test_file("cli/_parser.py") == TESTS / "cli" / "test_parser.py"
    assert own_test_file("testing/__init__.py") is None
    assert "tests/test_errors.py" in covers_lines()["_text.py"]


def test_every_public_module_of_the_package_has_its_own_test_file() -> None:
    public = [m for m in overlay_modules() if "/" not in m and not m.startswith("_")]
    assert [m for m in public if not (own_test_file(m) or TESTS / "-").exists()] == []


def test_every_overlay_module_has_a_test_file_or_is_named_by_one() -> None:
    named = covers_lines()
    untested = [m for m in overlay_modules()
                if m not in named and not ((own := own_test_file(m)) and own.exists())]
    assert untested == [], (
        "give each a tests/test_<module>.py, or name it on a 'Covers:' line of the docstring "
        "of the test file that exercises it")


def test_covers_lines_name_modules_that_exist() -> None:
    modules = set(overlay_modules())
    assert {module: files for module, files in covers_lines().items() if module not in modules} == {}
