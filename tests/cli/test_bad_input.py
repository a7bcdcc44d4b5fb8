"""Issue 11.6, input side: every bad input ends with exit 2 and a message that says what is
wrong, before anything is sent; nothing blocks on a pipe or reads a device forever.

Covers: cli/__main__.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode
from kling_i2v.testing import FakeGateway

from tests.cli.conftest import Cli

DEEP = "[" * 100_000 + "]" * 100_000


def _kling(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, so that a hang fails the test in 60 s."""
    env = {**os.environ, "ANYFAST_BASE_URL": "http://127.0.0.1:9", "ANYFAST_API_KEY": "sk-unused-key"}
    return subprocess.run([sys.executable, "-m", "kling_i2v.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_csv_that_is_not_utf8(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    Path("shots.csv").write_bytes(b"image,prompt\ncat.png,caf\xe9 au lait\n")
    run = cli("batch", "shots.csv", "--out", "v")
    assert run.code == ExitCode.INVALID_INPUT
    assert "the manifest shots.csv is not UTF-8 text (byte 0xe9 on line 2); save it as UTF-8" in run.err
    assert fake_gateway.requests == []


def test_a_lone_surrogate_in_json_lines(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    Path("shots.jsonl").write_text('{"image": "cat.png", "prompt": "a \\ud800 b"}\n')
    run = cli("batch", "shots.jsonl", "--out", "v")
    assert run.code == ExitCode.INVALID_INPUT
    assert "shots.jsonl:1: prompt: must be text without lone surrogates (got \"a \\ud800 b\")" in run.err
    assert fake_gateway.requests == []


def test_a_128_kb_csv_cell(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    Path("shots.csv").write_text("image,prompt\ncat.png,ok\ncat.png," + "x" * 131_073 + "\n")
    run = cli("batch", "shots.csv", "--out", "v")
    assert run.code == ExitCode.INVALID_INPUT
    assert "shots.csv:3: 1 problem:" in run.err
    assert "a cell is longer than 131,072 characters; the rows after it were not read" in run.err
    assert fake_gateway.requests == []


def test_deep_json_in_a_manifest(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    Path("shots.jsonl").write_text(
        json.dumps({"image": "cat.png", "prompt": "a"}) + "\n"
        + '{"image": "cat.png", "prompt": "b", "camera_control": ' + DEEP + "}\n"
        + '{"image": "cat.png", "prompt": "c", "camera_control": ' + "[" * 40 + "]" * 40 + "}\n")
    run = cli("batch", "shots.jsonl", "--out", "v")
    assert run.code == ExitCode.INVALID_INPUT
    assert "shots.jsonl: 2 of 3 row(s) have problems; nothing was sent; --skip-invalid runs the others:" \
        in run.err
    assert ("2 rows (shots.jsonl:2, shots.jsonl:3): not JSON (JSON nested more than 32 levels deep)"
            in run.err)
    Path("shots.csv").write_text('image,prompt,camera_control\ncat.png,a,"' + "[" * 40 + "]" * 40 + '"\n')
    run = cli("batch", "shots.csv", "--out", "v")
    assert run.code == ExitCode.INVALID_INPUT
    assert "shots.csv:2: camera_control: JSON nested more than 32 levels deep" in run.err
    assert fake_gateway.requests == []


def test_deep_json_in_an_option_file(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    Path("deep.json").write_text(DEEP)
    run = cli("create", str(good_image), "--prompt", "x", "--camera-control", "@deep.json")
    assert run.code == ExitCode.INVALID_INPUT
    assert "argument --camera-control: JSON nested more than 32 levels deep" in run.err
    run = cli("create", str(good_image), "--prompt", "x", "--camera-control", '{"type": ' + DEEP + "}")
    assert run.code == ExitCode.INVALID_INPUT
    assert fake_gateway.requests == []


def test_dev_zero_as_an_option_file(tmp_path: Path, good_image: Path) -> None:
    result = _kling("create", str(good_image), "--prompt", "x", "--camera-control", "@/dev/zero",
                    cwd=tmp_path)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert ("argument --camera-control: the file /dev/zero must be a regular file, got a character "
            "device") in result.stderr


def test_a_large_option_file(cli: Cli, good_image: Path) -> None:
    Path("big.json").write_text('{"type": "simple", "pad": "' + "x" * (1024 * 1024) + '"}')
    run = cli("create", str(good_image), "--prompt", "x", "--camera-control", "@big.json")
    assert run.code == ExitCode.INVALID_INPUT
    assert "the file big.json is larger than 1 MB" in run.err


def test_a_fifo_as_the_image_or_the_manifest_is_refused_before_opening(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "cat.png")
    os.mkfifo(tmp_path / "shots.csv")
    result = _kling("create", "cat.png", "--prompt", "x", cwd=tmp_path)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "image: cat.png must be a regular file, got a named pipe (FIFO)" in result.stderr

    result = _kling("batch", "shots.csv", "--out", "v", cwd=tmp_path)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "the manifest shots.csv must be a regular file, got a named pipe (FIFO)" in result.stderr

    (tmp_path / "rows.csv").write_text("image,prompt\ncat.png,x\n")
    result = _kling("batch", "rows.csv", "--out", "v", cwd=tmp_path)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "rows.csv:2: image: the image" in result.stderr
    assert "must be a regular file, got a named pipe (FIFO)" in result.stderr


@pytest.fixture
def full_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real file system with no space left: a one-page tmpfs, filled up."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mount)],
                          capture_output=True, check=False, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        with open(mount / "filler", "wb") as f:
            try:
                f.write(b"\0" * 65536)
                f.flush()
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=30)


def test_a_full_disk_is_an_environment_error(cli: Cli, fake_gateway: FakeGateway, good_image: Path,
                                             full_disk: Path) -> None:
    run = cli("create", str(good_image), "--prompt", "x", "--out", str(full_disk / "cat.mp4"),
              "--poll-interval", "0.05")
    assert run.code == ExitCode.INVALID_INPUT, run.err
    (task_id,) = fake_gateway.tasks
    assert (f"task {task_id} succeeded but the video could not be saved (No space left on device); "
            f"free the space or pick another place, then get it with: kling-i2v download {task_id} "
            "--out FILE") in run.err
    assert "unexpected" not in run.err
