"""The overlay is typed: users' type checkers see what the README promises."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_mypy_strict_on_the_overlay() -> None:
    from mypy import api

    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", str(REPO / "overlays" / "kling_i2v")]
    )
    assert status == 0, stdout + stderr
