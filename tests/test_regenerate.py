"""generate.sh is how the project is maintained: a spec change flows into the generated package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KLING_TOOLS_VENV": str(Path(sys.prefix))}
    return subprocess.run(
        [str(REPO / "generate.sh"), *args], capture_output=True, text=True, env=env, timeout=300
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts  # left by importing, not by generating
    }


def test_check_passes_on_the_committed_tree() -> None:
    result = generate("--check")
    assert result.returncode == 0, result.stderr


def test_two_runs_are_byte_identical_and_clean(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "kling_i2v_api", tmp_path / "b" / "kling_i2v_api"
    assert generate("--out", str(first)).returncode == 0
    assert generate("--out", str(second)).returncode == 0
    assert tree(first) == tree(second)
    assert tree(first) == tree(REPO / "generated_client" / "kling_i2v_api")
    names = {p.name for p in first.rglob("*")}
    assert not names & {"__pycache__", ".ruff_cache", ".mypy_cache"}


def test_a_new_enum_value_flows_through_regeneration(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "openapi.yaml").read_text())
    spec["components"]["schemas"]["ModelName"]["enum"].append("kling-v2-6-pro")
    changed = tmp_path / "openapi.yaml"
    changed.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = tmp_path / "gen" / "kling_i2v_api"
    result = generate("--spec", str(changed), "--out", str(out))
    assert result.returncode == 0, result.stderr

    probe = (
        "from kling_i2v_api.models import ImageToVideoRequest, ModelName\n"
        "r = ImageToVideoRequest.from_dict({'model_name': 'kling-v2-6-pro', 'image': 'u', 'prompt': 'p'})\n"
        "assert r.model_name is ModelName.KLING_V2_6_PRO, r.model_name\n"
        "print(r.to_dict()['model_name'])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(out.parent)}, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "kling-v2-6-pro"

    # --check against the changed spec names what would change
    check = generate("--check", "--spec", str(changed))
    assert check.returncode == 1
    assert "model_name.py" in check.stderr
    # and every artefact generate_extras.py writes
    for name in ("openapi.json", "validators.py", "_fields_doc.py"):
        assert name in check.stderr, name


def test_the_old_package_rejects_the_new_value() -> None:
    from kling_i2v_api.models import ModelName

    with pytest.raises(ValueError):
        ModelName("kling-v2-6-pro")


def test_generator_warnings_fail_the_script(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "openapi.yaml").read_text())
    # a $ref to nowhere: the generator skips the endpoint with a warning
    spec["paths"]["/kling/v1/videos/image2video"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ] = {"$ref": "#/components/schemas/Nowhere"}
    broken = tmp_path / "openapi.yaml"
    broken.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = generate("--spec", str(broken), "--out", str(tmp_path / "out"))
    assert result.returncode != 0
    assert not (tmp_path / "out").exists()


def test_mypy_strict_on_the_generated_package() -> None:
    from mypy import api

    stdout, stderr, status = api.run(["--strict", "--no-incremental", str(REPO / "generated_client")])
    assert status == 0, stdout + stderr




def test_a_keyword_the_fast_validators_do_not_know_stops_the_generation(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "openapi.yaml").read_text())
    spec["components"]["schemas"]["ImageToVideoRequest"]["propertyNames"] = {"maxLength": 20}
    changed = tmp_path / "openapi.yaml"
    changed.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = generate("--spec", str(changed), "--out", str(tmp_path / "gen" / "kling_i2v_api"))
    assert result.returncode != 0
    assert "keyword 'propertyNames'" in result.stderr
