"""A batch whose gateway cannot be reached stops with its rows pending (exit 3), and the
summary's advice fits the rows it names (the fix round's A3 and A5)."""

from __future__ import annotations

from pathlib import Path

from kling_i2v.cli import ExitCode
from kling_i2v.journal import JOURNAL_NAME, Journal, RowState
from kling_i2v.testing import FakeGateway, sample_image_path

from tests.cli.conftest import DEAD_GATEWAY, Cli

FAST = ("--poll-interval", "0.05")


def _shots(tmp_path: Path, prompts: list[str]) -> None:
    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    (tmp_path / "shots.csv").write_text("image,prompt\n" + "".join(f"cat.png,{p}\n" for p in prompts))


def test_a_batch_that_reaches_no_gateway_stops_and_keeps_its_rows_pending(
        cli: Cli, fake_gateway: FakeGateway, tmp_path: Path) -> None:
    _shots(tmp_path, ["a", "b", "c"])
    run = cli("batch", "shots.csv", "--out", "videos", "--max-attempts", "2", *FAST,
              "--base-url", DEAD_GATEWAY, "--token", "sk-nobody-listens", connect=False)
    assert run.code == ExitCode.API_ERROR, run.text
    assert DEAD_GATEWAY in run.text
    assert "refused by the gateway" not in run.text and "--retry-failed" not in run.text
    assert "3 row(s) not finished" in run.text
    with Journal(tmp_path / "videos" / JOURNAL_NAME) as journal:
        assert {row.state for row in journal.rows()} == {RowState.PENDING}

    # the same command against a gateway that answers makes them all, once each
    run = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert run.code == ExitCode.OK, run.text
    assert fake_gateway.count(on="create") == 3


def test_advice_for_one_failed_row_speaks_of_it_not_them(cli: Cli, fake_gateway: FakeGateway,
                                                         tmp_path: Path) -> None:
    _shots(tmp_path, ["fine", "doomed [fake:fail]"])
    run = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert run.code == ExitCode.TASK_FAILED, run.text
    assert "line 3: the task failed: --retry-failed creates it again (and pays again)" in run.text
    assert "them" not in run.text


def test_a_rerun_says_it_resumed_and_what_it_created(cli: Cli, fake_gateway: FakeGateway,
                                                     tmp_path: Path) -> None:
    # the fix round's A6: a rerun with nothing to do looked like the first run
    _shots(tmp_path, ["a", "b", "doomed [fake:fail]"])
    first = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert first.code == ExitCode.TASK_FAILED and "resumed" not in first.text

    again = cli("batch", "shots.csv", "--out", "videos", *FAST)
    assert again.code == ExitCode.TASK_FAILED
    assert "resumed: 0 created, 2 already done, 1 failed earlier" in again.text
    assert fake_gateway.count(on="create") == 3

    (tmp_path / "shots.csv").write_text((tmp_path / "shots.csv").read_text() + "cat.png,d\n")
    more = cli("--json", "batch", "shots.csv", "--out", "videos", *FAST)
    assert more.json()["resumed"] == "resumed: 1 created, 2 already done, 1 failed earlier"
