"""The figures each hostile suite reports: printed (visible with `pytest -s`, and in the
terminal summary) and merged into tests/hostile/figures.json for the README to quote.

Each suite owns one key of the JSON file and replaces it whole when it runs, so running a
single suite keeps the others' last figures.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIGURES_PATH = Path(__file__).resolve().parent / "figures.json"

_lock = threading.Lock()
collected: dict[str, dict[str, Any]] = {}
"""What this pytest session recorded, for the terminal summary."""


def record(suite: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print `figures` for `suite`, keep them for the summary and write them to figures.json."""
    with _lock:
        collected[suite] = figures
        print(f"\n[hostile] {suite}: " + json.dumps(figures, sort_keys=True), flush=True)
        try:
            current = json.loads(FIGURES_PATH.read_text())
            if not isinstance(current, dict):
                current = {}
        except (OSError, ValueError):
            current = {}
        current[suite] = figures
        fd, temp = tempfile.mkstemp(dir=FIGURES_PATH.parent, prefix=".figures.", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(current, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(temp, FIGURES_PATH)
    return figures


def merge(suite: str, **figures: Any) -> dict[str, Any]:
    """Add to (or overwrite keys of) the figures already recorded for `suite` in this session."""
    with _lock:
        current = dict(collected.get(suite, {}))
    current.update(figures)
    return record(suite, current)


def report_after(suite: str, figures_of: Callable[[], dict[str, Any]]) -> Any:
    """A module-scoped autouse fixture that records `figures_of()` for `suite` once the
    module's tests have run; assign it to a name in the suite's module."""

    @pytest.fixture(scope="module", autouse=True)
    def report() -> Iterator[None]:
        yield
        record(suite, figures_of())

    return report
