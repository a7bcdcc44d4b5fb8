"""The pre-flight: every row checked before anything is sent, problems told once per kind,
warnings for what the model is reported not to do, and the plan from the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from kling_i2v.journal import JOURNAL_NAME, Journal, NewRow
from kling_i2v.preflight import make_plan, preflight
from kling_i2v.testing import sample_image_path

from tests.cli.conftest import image_folder, write_manifest


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return image_folder(tmp_path)


def test_every_local_image_is_checked_before_anything_is_sent(folder: Path) -> None:
    report = preflight(write_manifest(folder, "image,prompt\ncat.png,a\nsmall.png,b\nwide.png,c\nfake.png,d\n"))
    assert [row.line for row in report.rows] == [2]
    assert report.invalid == 3
    small, wide, fake = report.problem_lines()
    fit = " — --fit converts, pads and scales it to meet the rules (--crop to crop instead)"
    assert small == "shots.csv:3: image: each side must be at least 300 px (small.png: 200x200)" + fit
    assert wide == ("shots.csv:4: image: aspect ratio must be between 1:2.5 and 2.5:1 "
                    "(wide.png: 3.33:1, 1000x300)" + fit)
    assert fake.startswith("shots.csv:5: image: must be a JPEG or PNG image (fake.png: GIF")


def test_a_missing_image_is_told_once(folder: Path) -> None:
    # the manifest says it is missing; reading its header must not say it again (A4)
    report = preflight(write_manifest(folder, "image,prompt\ncat.png,a\nmissing.png,b\n"))
    assert report.problem_lines() == ["shots.csv:3: image: no such image file: missing.png"]


def test_request_and_image_problems_are_reported_together(folder: Path) -> None:
    report = preflight(write_manifest(folder, "image,prompt,mode\nsmall.png,a,ultra\n"))
    assert report.rows == () and report.invalid == 1
    mode, image = report.problem_lines()
    assert mode.startswith("shots.csv:2: mode: must be one of")  # from the spec
    assert image.startswith("shots.csv:2: image: each side must be at least 300 px")  # from the file


def test_a_repeated_problem_is_told_once_with_the_rows_and_what_to_do(folder: Path) -> None:
    for n in range(20):
        (folder / f"shot{n:02d}.png").write_bytes(sample_image_path().read_bytes())
    for name in ("small.png", "wide.png", "fake.png", "cat.png"):
        (folder / name).unlink()
    (line,) = preflight(folder).problem_lines()
    assert line.startswith("20 rows (shot00.png, shot01.png, shot02.png, shot03.png and 16 more): prompt is required")
    assert line.endswith("(missing) — pass --prompt")

    rows = "".join(f"shot{n:02d}.png\n" for n in range(20))
    (line,) = preflight(write_manifest(folder, "image\n" + rows)).problem_lines()
    assert line.startswith("20 rows (shots.csv:2, shots.csv:3, shots.csv:4, shots.csv:5 and 16 more)")
    assert line.endswith("— add a `prompt` column or pass --prompt")


def test_capability_warnings_and_duplicates_are_warnings(folder: Path) -> None:
    report = preflight(write_manifest(folder, "image,prompt,model_name,sound,mode\n"
                                         "cat.png,a,kling-v2-master,on,pro\n"
                                         "cat.png,a,kling-v2-6,on,pro\n"
                                         "cat.png,a,kling-v2-6,on,pro\n"))
    assert len(report.rows) == 3 and not report.problems
    warnings = report.warning_lines()
    assert len(warnings) == 2
    assert warnings[0].startswith("shots.csv:2: sound 'on': kling-v2-master does not support sound")
    assert warnings[1] == ("shots.csv:4: asks for the same video as shots.csv:3; each copy is made "
                           "and paid for")


def test_an_unlisted_model_is_a_problem_unless_allowed(folder: Path) -> None:
    manifest = write_manifest(folder, "image,prompt,model_name\ncat.png,a,kling-v9\n")
    (problem,) = preflight(manifest).problem_lines()
    assert "model_name" in problem and "kling-v9" in problem and "--allow-unknown-model" in problem
    report = preflight(manifest, allow_unknown_model=True)
    assert len(report.rows) == 1
    (warning,) = report.warning_lines()
    assert warning.startswith("shots.csv:2: model_name 'kling-v9' is not one of the models the spec lists")


def test_the_plan_reads_the_journal_without_changing_it(folder: Path, tmp_path: Path) -> None:
    manifest = write_manifest(folder, "image,prompt,duration,mode\ncat.png,a,5,std\ncat.png,b,10,std\n"
                                 "cat.png,c,10,std\ncat.png,d,5,pro\n")
    rows = preflight(manifest).rows
    out = tmp_path / "out"
    plan = make_plan(rows, out)
    assert not out.exists()  # a dry run leaves no folder behind
    assert plan.count("create") == 4
    assert sorted(plan.totals) == [("kling-v2-master", "pro", "5", 1, 5),
                                   ("kling-v2-master", "std", "10", 2, 20),
                                   ("kling-v2-master", "std", "5", 1, 5)]

    with Journal(out / JOURNAL_NAME) as journal:
        journal.add([NewRow(key=r.key, line=r.line, image=r.image, output=r.output, fields=r.written)
                     for r in rows])
        journal.submitting(rows[0].key, "ext-1")
        journal.submitted(rows[0].key, "t1")
        journal.submitting(rows[1].key, "ext-2")
        journal.ambiguous(rows[1].key, "reset")
        journal.submitting(rows[2].key, "ext-3")
        journal.submitted(rows[2].key, "t3")
        journal.succeeded(rows[2].key, "https://cdn.example/v.mp4")
    before = (out / JOURNAL_NAME).read_bytes()
    plan = make_plan(rows, out)
    assert [plan.actions[r.key] for r in rows] == ["poll", "ambiguous", "download", "create"]
    assert plan.totals == (("kling-v2-master", "pro", "5", 1, 5),)
    assert make_plan(rows, out, resubmit_ambiguous=True).count("create") == 2
    assert (out / JOURNAL_NAME).read_bytes() == before


def test_without_pillow_a_folder_says_what_it_left_out_and_that_fit_takes_more(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # without the images extra nothing can tell which files --fit would take
    monkeypatch.setattr("kling_i2v._pillow.readable_suffixes", lambda: frozenset())
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.PNG").write_bytes(sample_image_path().read_bytes())
    (folder / "beach.webp").write_bytes(b"RIFF....WEBP")
    (folder / "notes.txt").write_text("x")
    report = preflight(folder, {"prompt": "waves"})
    assert [row.fields["image"].endswith("cat.PNG") for row in report.rows] == [True]
    assert report.warning_lines() == [
        f"{folder}: 2 of 3 file(s) left out: 2 not .jpg/.jpeg/.png (beach.webp, notes.txt); "
        "--fit (with kling-i2v[images]) takes any image Pillow reads"]
