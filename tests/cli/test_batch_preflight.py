"""`kling-i2v batch` checks every row before the first create (issue 13.1), shows its plan
with --dry-run (13.2), and runs only the valid rows when asked to (--skip-invalid)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode
from kling_i2v.testing import FakeGateway, sample_image_path

from tests.cli.conftest import Cli, image_folder, write_manifest


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return image_folder(tmp_path / "shots", good=("a.png", "b.png"), gif="anim.png")


MIXED = ("image,prompt,mode\n"
         "a.png,the cat jumps,std\n"
         "small.png,the dog runs,std\n"
         "b.png,,std\n"
         "b.png,the bird sings,ultra\n"
         "anim.png,the fish swims,pro\n")


def test_a_manifest_with_any_invalid_row_sends_nothing(cli: Cli, fake_gateway: FakeGateway,
                                                       shots: Path) -> None:
    run = cli("batch", str(write_manifest(shots, MIXED)), "--out", "videos")
    assert run.code == ExitCode.INVALID_INPUT
    assert fake_gateway.requests == []  # not a create, not a query: nothing at all
    text = run.text
    assert "shots.csv: 4 of 5 row(s) have problems; nothing was sent; --skip-invalid runs the others:" in text
    for line in ("shots.csv:3: image: each side must be at least 300 px (small.png: 200x200)",
                 "shots.csv:4: prompt is required",
                 "— its `prompt` cell is empty: fill it in, or pass --prompt for such rows",
                 "shots.csv:5: mode: must be one of std, pro",
                 "shots.csv:6: image: must be a JPEG or PNG image (anim.png: GIF"):
        assert line in text
    assert not Path("videos").exists()


def test_skip_invalid_runs_the_valid_rows_and_says_which_were_left(cli: Cli, fake_gateway: FakeGateway,
                                                                   shots: Path) -> None:
    run = cli("batch", str(write_manifest(shots, MIXED)), "--out", "videos", "--skip-invalid",
              "--poll-interval", "0.05")
    assert run.code == ExitCode.OK, run.err
    assert fake_gateway.count(on="create") == 1
    (task,) = fake_gateway.tasks.values()
    assert task.body["prompt"] == "the cat jumps"
    assert "skipping 4 row(s) with problems (--skip-invalid):" in run.err
    assert "shots.csv:3: image: each side must be at least 300 px" in run.err


def test_a_folder_without_prompt_tells_it_once(cli: Cli, fake_gateway: FakeGateway, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(20):
        (folder / f"img{n:02d}.png").write_bytes(sample_image_path().read_bytes())
    run = cli("batch", str(folder), "--out", "videos")
    assert run.code == ExitCode.INVALID_INPUT
    assert fake_gateway.requests == []
    assert "20 of 20 row(s) have problems; nothing was sent:" in run.text
    assert "20 rows (img00.png, img01.png, img02.png, img03.png and 16 more): prompt is required" in run.text
    assert run.text.count("prompt is required") == 1
    assert run.text.rstrip().endswith("— pass --prompt")


def test_dry_run_shows_the_plan_and_sends_nothing(cli: Cli, fake_gateway: FakeGateway, shots: Path) -> None:
    manifest = write_manifest(shots, "image,prompt,mode,duration,model_name,sound\n"
                             "a.png,one,std,5,,\n"
                             "a.png,two,std,5,,\n"
                             "b.png,three,pro,10,kling-v2-6,on\n"
                             "b.png,four,std,10,kling-v2-master,on\n")
    # as a user types it: no token, no gateway (ANYFAST_BASE_URL points at a dead port)
    run = cli("batch", str(manifest), "--out", "videos", "--dry-run", connect=False)
    assert run.code == ExitCode.OK, run.err
    assert fake_gateway.requests == [] and not Path("videos").exists()
    assert run.text.splitlines() == [
        f"dry run of {manifest}: 4 row(s), 4 valid, 0 with problems; nothing was sent",
        "plan: 4 to create",
        "model mode duration tasks video s",
        "kling-v2-master std 5 2 10",
        "kling-v2-6 pro 10 1 10",
        "kling-v2-master std 10 1 10",
        "total 4 30",
        ("warning: shots.csv:5: sound 'on': kling-v2-master does not support sound (supported by: "
        "kling-v2-6 in mode pro, kling-v3 in mode pro); this comes from third-party docs and the "
        "gateway decides, so the request is sent anyway"),
    ]

    run = cli("--json", "batch", str(manifest), "--out", "videos", "--dry-run", connect=False)
    data = run.json()
    assert data["plan"] == {"create": 4, "poll": 0, "download": 0, "done": 0, "failed": 0, "ambiguous": 0}
    assert {"model_name": "kling-v2-6", "mode": "pro", "duration": "10", "tasks": 1,
            "video_seconds": 10} in data["to_create"]
    assert len(data["warnings"]) == 1 and data["problems"] == []


def test_dry_run_after_a_run_counts_what_is_done(cli: Cli, fake_gateway: FakeGateway, shots: Path) -> None:
    manifest = write_manifest(shots, "image,prompt\na.png,one\nb.png,two\n")
    assert cli("batch", str(manifest), "--out", "videos", "--poll-interval", "0.05").code == ExitCode.OK
    sent = len(fake_gateway.requests)
    manifest.write_text("image,prompt\na.png,one\nb.png,two\nb.png,three\n")
    run = cli("batch", str(manifest), "--out", "videos", "--dry-run")
    assert run.code == ExitCode.OK
    assert "plan: 1 to create, 2 done" in run.text
    assert len(fake_gateway.requests) == sent


def test_dry_run_with_problems_says_a_run_would_refuse(cli: Cli, fake_gateway: FakeGateway,
                                                       shots: Path) -> None:
    run = cli("batch", str(write_manifest(shots, MIXED)), "--out", "videos", "--dry-run")
    assert run.code == ExitCode.INVALID_INPUT
    assert "dry run of" in run.text and "1 valid, 4 with problems" in run.text
    assert "plan: 1 to create" in run.text
    assert "a run would send nothing until these are fixed" in run.text
    run = cli("batch", str(write_manifest(shots, MIXED)), "--out", "videos", "--dry-run", "--skip-invalid")
    assert run.code == ExitCode.OK
    assert fake_gateway.requests == []
