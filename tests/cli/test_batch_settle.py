"""Issue 13.3, command-line side: every row ends settled. An ambiguous row is listed with
its external_task_id and the command that links the task the user found; `--adopt`
links it and the run polls and downloads it. A refused row says how to retry."""

from __future__ import annotations

from pathlib import Path

from kling_i2v.cli import ExitCode
from kling_i2v.testing import FakeGateway, Fault, sample_image_path, sample_video_path

from tests.cli.conftest import Cli

FAST = ("--poll-interval", "0.05")


def _shots(tmp_path: Path, rows: int) -> Path:
    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    path = tmp_path / "shots.csv"
    path.write_text("image,prompt\n" + "".join(f"cat.png,shot {n}\n" for n in range(rows)))
    return path


def test_an_ambiguous_row_is_linked_to_the_task_the_user_found(cli: Cli, fake_gateway: FakeGateway,
                                                               tmp_path: Path) -> None:
    _shots(tmp_path, 3)
    fake_gateway.inject(Fault.drop_after_create(), on="create")  # the task exists, the answer is lost
    run = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert run.code == ExitCode.AMBIGUOUS
    (lost,) = [t for t in fake_gateway.tasks.values() if t.external_task_id in run.out]
    line = next(text for text in run.text.splitlines() if lost.external_task_id in text).split()[0]
    assert (f"kling-i2v batch shots.csv --out videos --base-url {fake_gateway.base_url} "
            f"--adopt {line}=TASK_ID") in run.text
    assert "look for each external_task_id in your anyfast.ai task list" in run.text
    assert "--resubmit-ambiguous" in run.text

    run = cli("batch", "shots.csv", "--out", "videos", "--adopt", f"{line}={lost.task_id}", *FAST)
    assert run.code == ExitCode.OK, run.text
    assert f"line {line}: linked to task {lost.task_id}" in run.text
    assert fake_gateway.count(on="create") == 3  # nothing created twice
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 3 and all(v.read_bytes() == sample_video_path().read_bytes() for v in videos)


def test_adopt_refuses_what_it_cannot_link(cli: Cli, fake_gateway: FakeGateway, tmp_path: Path) -> None:
    _shots(tmp_path, 1)
    assert cli("batch", "shots.csv", "--out", "videos", *FAST).code == ExitCode.OK
    run = cli("batch", "shots.csv", "--out", "videos", "--adopt", "2=12345")
    assert run.code == ExitCode.INVALID_INPUT
    assert "only an ambiguous row can be linked to a task" in run.text
    run = cli("batch", "shots.csv", "--out", "videos", "--adopt", "2")
    assert run.code == ExitCode.INVALID_INPUT
    assert "argument --adopt: expected ROW=TASK_ID" in run.text


def test_a_row_the_gateway_refused_says_how_to_retry(cli: Cli, fake_gateway: FakeGateway,
                                                     tmp_path: Path) -> None:
    _shots(tmp_path, 2)
    fake_gateway.inject(Fault.status(400), on="create")
    run = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert run.code == ExitCode.TASK_FAILED, run.text
    assert ": not created, nothing was paid: send it again with --retry-failed" in run.text
    run = cli("batch", "shots.csv", "--out", "videos", "--retry-failed", *FAST)
    assert run.code == ExitCode.OK, run.text


def test_a_row_refused_locally_runs_once_its_image_is_fixed(cli: Cli, fake_gateway: FakeGateway,
                                                           tmp_path: Path) -> None:
    from tests.imagegen import make_png

    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    (tmp_path / "small.png").write_bytes(make_png(200, 200))
    (tmp_path / "shots.csv").write_text("image,prompt\ncat.png,a\nsmall.png,b\n")
    run = cli("batch", "shots.csv", "--out", "videos", "--skip-invalid", *FAST)
    assert run.code == ExitCode.OK and fake_gateway.count(on="create") == 1
    assert "shots.csv:3: image: each side must be at least 300 px (small.png: 200x200)" in run.text

    (tmp_path / "small.png").write_bytes(sample_image_path().read_bytes())  # the user fixes it
    run = cli("batch", "shots.csv", "--out", "videos", *FAST)  # a plain re-run: no flag needed
    assert run.code == ExitCode.OK, run.text
    assert fake_gateway.count(on="create") == 2
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 2


def test_a_resume_against_another_gateway_names_both(cli: Cli, fake_gateway: FakeGateway,
                                                     tmp_path: Path) -> None:
    _shots(tmp_path, 1)
    fake_gateway.inject(Fault.drop_after_create(), on="create")
    assert cli("batch", "shots.csv", "--out", "videos", *FAST).code == ExitCode.AMBIGUOUS
    with FakeGateway(tokens=(fake_gateway.token,)) as other:
        run = cli("batch", "shots.csv", "--out", "videos", "--base-url", other.base_url,
                  "--token", other.token, connect=False)
        assert other.requests == []
        assert run.code == ExitCode.INVALID_INPUT
        assert fake_gateway.base_url in run.text and other.base_url in run.text


def test_adopting_an_id_the_gateway_does_not_know_leaves_the_row_ambiguous(
        cli: Cli, fake_gateway: FakeGateway, tmp_path: Path) -> None:
    # a typo in --adopt must not turn a row whose task may exist into a failed row
    # with advice to pay again (the fix round's A1)
    _shots(tmp_path, 2)
    fake_gateway.inject(Fault.drop_after_create(), on="create")
    first = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert first.code == ExitCode.AMBIGUOUS
    (lost,) = [t for t in fake_gateway.tasks.values() if t.external_task_id in first.out]
    line = next(text for text in first.text.splitlines() if lost.external_task_id in text).split()[0]

    run = cli("batch", "shots.csv", "--out", "videos", "--adopt", f"{line}=nonexistent123", *FAST)
    assert run.code == ExitCode.INVALID_INPUT, run.text
    assert (f"--adopt {line}=nonexistent123: the gateway does not know task nonexistent123; "
            f"check the id") in run.text
    assert lost.external_task_id in run.text and f"Line {line} stays ambiguous" in run.text
    assert "--retry-failed" not in run.text and "failed" not in run.text
    assert fake_gateway.count(on="create") == 2  # nothing sent again

    again = cli("batch", "shots.csv", "--out", "videos", *FAST)  # the row is still ambiguous
    assert again.code == ExitCode.AMBIGUOUS and lost.external_task_id in again.text
    # the other row's task is real but is not this row's: refused too (its external id)
    (other,) = [t for t in fake_gateway.tasks.values() if t is not lost]
    wrong = cli("batch", "shots.csv", "--out", "videos", "--adopt", f"{line}={other.task_id}", *FAST)
    assert wrong.code == ExitCode.INVALID_INPUT, wrong.text
    assert (f"task {other.task_id} carries external_task_id {other.external_task_id}, not line "
            f"{line}'s {lost.external_task_id}") in " ".join(wrong.text.split())
    assert fake_gateway.count(on="create") == 2
    assert cli("batch", "shots.csv", "--out", "videos", "--adopt", f"{line}={lost.task_id}",
               *FAST).code == ExitCode.OK
