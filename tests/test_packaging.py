"""One wheel ships both packages, their py.typed markers and the spec the overlay reads.

Covers: _version.py
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("kling_i2v-*.whl")
    from kling_i2v import __version__  # the one place the version is written (_version.py)

    assert wheel.name.startswith(f"kling_i2v-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "kling_i2v/py.typed" in names
    assert "kling_i2v_api/py.typed" in names
    assert "kling_i2v_api/models/image_to_video_request.py" in names
    assert "kling_i2v/openapi.yaml" in names
    shipped = zipfile.ZipFile(wheel).read("kling_i2v/openapi.yaml")
    assert shipped == (REPO / "openapi.yaml").read_bytes()
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Python: >=3.11" in text
    assert not any("__pycache__" in n for n in names)


def test_installed_overlay_reads_the_spec() -> None:
    from importlib.resources import files

    spec = (files("kling_i2v") / "openapi.yaml").read_text()
    assert spec == (REPO / "openapi.yaml").read_text()
