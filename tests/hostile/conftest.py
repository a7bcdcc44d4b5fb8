"""Shared by the hostile suites: hypothesis settings and the figures summary.

Two hypothesis profiles: `hostile-ci` (derandomized, no example database, so a CI run
draws the same cases every time and the figures it prints are reproducible) is used when
$CI is set; `hostile-dev` (random, with hypothesis' example database, to keep exploring)
otherwise. `HOSTILE_PROFILE=hostile-ci` forces either. The profiles are applied per test
(`settings(parent=...)`), not loaded globally, so other test modules keep their own.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings

from tests.hostile import figures

settings.register_profile(
    "hostile-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.register_profile(
    "hostile-dev",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

PROFILE = os.environ.get("HOSTILE_PROFILE") or ("hostile-ci" if os.environ.get("CI") else "hostile-dev")


def hostile(max_examples: int, **overrides: Any) -> settings:
    """The settings of one hostile test: the active profile with its own example budget."""
    return settings(settings.get_profile(PROFILE), max_examples=max_examples, **overrides)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not figures.collected:
        return
    terminalreporter.section("hostile-world figures (tests/hostile/figures.json)")
    for suite, values in figures.collected.items():
        terminalreporter.write_line(f"{suite}: {json.dumps(values, sort_keys=True)}")
