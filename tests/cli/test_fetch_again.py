"""A video that could not be fetched after its task succeeded: the user is told the exact
command that fetches it again, with the --out and --base-url they used (create --wait,
wait, download, and the batch summary)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode
from kling_i2v.testing import FakeGateway, Fault

from tests.cli.conftest import Cli, write_manifest

FAST = ("--poll-interval", "0.05")
HTML = b"<!doctype html><title>Access denied</title>"


def _hint(text: str) -> list[str]:
    """The printed command, as words."""
    (line,) = [line for line in text.splitlines() if "kling-i2v download" in line]
    command = line[line.index("kling-i2v download"):]
    return shlex.split(command.split(" (")[0].rstrip(".;"))


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.body(HTML, status=200), "a web page, not a video"),  # where the video was
        (Fault.reset_before_response(), "reset"),  # the connection cut, every try
    ],
    ids=["wrong-content-type", "cut-connection"],
)
def test_create_wait_out_tells_how_to_fetch_again(cli: Cli, fake_gateway: FakeGateway, good_image: Path,
                                                   fault: Fault, words: str) -> None:
    fake_gateway.inject(fault, on="download", times=None)
    run = cli("create", str(good_image), "--prompt", "x", "--out", "clips/cat.mp4", *FAST)
    assert run.code == ExitCode.API_ERROR, run.err
    (task_id,) = fake_gateway.tasks
    assert f"task {task_id} succeeded but its video could not be fetched" in run.err
    assert words in run.err
    assert _hint(run.err) == ["kling-i2v", "download", task_id, "--out", "clips/cat.mp4",
                              "--base-url", fake_gateway.base_url]
    assert not Path("clips/cat.mp4").exists()

    fake_gateway.clear_faults()  # the hint, run as printed, gets the video (the token is in the env)
    again = cli(*_hint(run.err)[1:], "--token", fake_gateway.token, connect=False)
    assert again.code == ExitCode.OK, again.err
    assert Path("clips/cat.mp4").stat().st_size > 0


def test_a_video_over_the_size_cap_is_told_with_the_command(cli: Cli, fake_gateway: FakeGateway,
                                                            good_image: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kling_i2v._core.DEFAULT_MAX_VIDEO_BYTES", 1000)  # the sample is 5.8 KB
    created = cli("create", str(good_image), "--prompt", "x")
    (task_id,) = fake_gateway.tasks
    run = cli("--json", "wait", task_id, "--out", "videos/", *FAST)
    assert created.code == ExitCode.OK and run.code == ExitCode.API_ERROR
    error = run.json()["error"]
    assert "1,000 bytes" in error["message"], error
    expected = ["kling-i2v", "download", task_id, "--out", "videos/", "--base-url",
                fake_gateway.base_url, "--json"]
    assert _hint(error["message"]) == expected
    assert error["task"]["status"] == "succeeded"


def test_the_batch_summary_tells_how_to_fetch_each_video(cli: Cli, fake_gateway: FakeGateway,
                                                          good_image: Path) -> None:
    manifest = write_manifest(good_image.parent, "image,prompt\ncat.png,the cat jumps\n")
    fake_gateway.inject(Fault.body(HTML, status=200), on="download", times=None)
    run = cli("batch", str(manifest), "--out", "videos", "--max-attempts", "1", *FAST)
    assert run.code == ExitCode.NOT_FINISHED, run.text
    (task_id,) = fake_gateway.tasks
    assert "line 2: download failed 1 times" in run.text
    assert _hint(run.text) == ["kling-i2v", "download", task_id, "--out", "videos/0001-cat.mp4",
                               "--base-url", fake_gateway.base_url]

    again = cli("--json", "batch", str(manifest), "--out", "videos", "--max-attempts", "1", *FAST)
    (row,) = again.json()["rows"]
    assert row["state"] == "succeeded"
    assert shlex.split(row["fetch_again"]) == [
        "kling-i2v", "download", task_id, "--out", "videos/0001-cat.mp4", "--base-url",
        fake_gateway.base_url, "--json"]
    fake_gateway.clear_faults()
    done = cli(*shlex.split(row["fetch_again"])[1:], "--token", fake_gateway.token, connect=False)
    assert done.code == ExitCode.OK, done.out
    assert Path("videos/0001-cat.mp4").stat().st_size > 0
