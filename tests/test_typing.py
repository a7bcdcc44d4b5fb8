"""The overlay is typed: users' type checkers see what the README promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_mypy_strict_on_the_overlay() -> None:
    from mypy import api

    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", str(REPO / "overlays" / "kling_i2v")]
    )
    assert status == 0, stdout + stderr


# Both packages export lazily (a module `__getattr__`, PEP 562). A type checker that saw
# that `__getattr__` would take any unknown name for Any, so a misspelt import passed
# `mypy --strict`; they define it only at run time, and these must stay errors.
_MISSPELT = """\
import kling_i2v
import kling_i2v_api.models
from kling_i2v import Image, KlingClient, KlingClinet
from kling_i2v_api.models import ImageToVideoRequest, ImageToVideoRequst

kling_i2v.KlingClinet
kling_i2v_api.models.ImageToVideoRequst
client: KlingClient | None = None
image: Image | None = None
request: ImageToVideoRequest | None = None
wrong: int = kling_i2v.KlingClient  # a real name keeps its type: not Any either
wrong_too: int = kling_i2v_api.models.ModelName
"""


def test_mypy_strict_reports_a_misspelt_name_from_either_package(tmp_path: Path) -> None:
    from mypy import api

    (tmp_path / "user.py").write_text(_MISSPELT)
    stdout, stderr, status = api.run(["--strict", "--no-incremental", "--cache-dir",
                                      str(tmp_path / "cache"), str(tmp_path / "user.py")])
    errors = [(int(line), code) for line, code in re.findall(r":(\d+): error: .*\[([a-z-]+)\]$",
                                                             stdout, re.MULTILINE)]
    assert status == 1, stdout + stderr
    assert errors == [(3, "attr-defined"), (4, "attr-defined"), (6, "attr-defined"),
                      (7, "attr-defined"), (11, "assignment"), (12, "assignment")], stdout
    assert 'has no attribute "KlingClinet"; maybe "KlingClient"?' in stdout
    assert 'has no attribute "ImageToVideoRequst"; maybe "ImageToVideoRequest"?' in stdout
