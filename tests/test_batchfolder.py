"""kling_i2v.batchfolder: a batch's output folder, its lock, its repairs and their command.

How a run refuses a folder it cannot trust (lost, foreign or truncated journal, another
gateway) is tested in test_journal.py, and adopting a task after a login wall in
tests/hostile/test_journal_attacks.py; this file pins the repairs themselves:
`python -m kling_i2v.batchfolder rebuild`, `rebuild_journal` and `adopt`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kling_i2v import JournalError
from kling_i2v.batchfolder import adopt, created_record, main, open_folder, rebuild_journal, sending_record
from kling_i2v.cli import ExitCode
from kling_i2v.cli import main as cli_main
from kling_i2v.journal import JOURNAL_NAME, Journal, NewRow, RowState
from kling_i2v.tasklog import LOG_NAME, read_log
from kling_i2v.testing import FakeGateway, Fault, sample_image_path


def new_row(key: str, line: int) -> NewRow:
    return NewRow(key=key, line=line, image="cat.png", output=f"{key}.mp4", fields={"prompt": key})


def folder_with_log(tmp_path: Path) -> Path:
    """A folder whose log has row k1 created (task T1) and row k2 sent without an answer."""
    out = tmp_path / "out"
    with open_folder(out, "http://127.0.0.1:9") as folder:
        rows = [new_row("k1", 1), new_row("k2", 2)]
        folder.journal.add(rows)
        folder.log.write_now([sending_record(rows[0], "ext-1", {"prompt": "a"}),
                              created_record("k1", "ext-1", "T1"),
                              sending_record(rows[1], "ext-2", {"prompt": "b"})])
    return out


def test_rebuild_command_prints_where_the_old_journal_went(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = folder_with_log(tmp_path)
    assert main(["rebuild", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"the old journal is kept as {out / JOURNAL_NAME}.replaced-" in printed
    assert f"rebuilt {out / JOURNAL_NAME} from the task log" in printed
    with Journal.in_folder(out) as journal:
        states = {row.key: row.state for row in journal.rows()}
        assert journal.meta("base_url") == "http://127.0.0.1:9"  # from the log's header
    assert states == {"k1": RowState.SUBMITTED, "k2": RowState.AMBIGUOUS}


def test_rebuild_keeps_the_old_journal_and_marks_unanswered_creates_ambiguous(tmp_path: Path) -> None:
    out = folder_with_log(tmp_path)
    kept = rebuild_journal(out)
    assert kept.exists() and kept.name.startswith(f"{JOURNAL_NAME}.replaced-")
    with open_folder(out, "http://127.0.0.1:9") as folder:
        one, two = folder.journal.get("k1"), folder.journal.get("k2")
        assert one is not None and one.state is RowState.SUBMITTED and one.task_id == "T1"
        assert two is not None and two.state is RowState.AMBIGUOUS and two.external_task_id == "ext-2"
        assert folder.journal.fields("k2") == {"prompt": "b"}


def test_rebuild_without_a_task_log_is_refused_with_exit_code_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rebuild", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path} has no task log ({LOG_NAME}) to rebuild the journal from\n"
    assert not (tmp_path / JOURNAL_NAME).exists()


def test_rebuild_of_a_damaged_log_names_the_line_and_changes_nothing(tmp_path: Path) -> None:
    out = folder_with_log(tmp_path)
    with (out / LOG_NAME).open("a") as log:
        log.write('{"event": "created", "key": "k3"}\n{"event": "created"}\n')
    before = (out / JOURNAL_NAME).read_bytes()
    with pytest.raises(JournalError, match="damaged at line 5"):
        rebuild_journal(out)
    assert (out / JOURNAL_NAME).read_bytes() == before
    assert [p.name for p in out.iterdir() if "replaced" in p.name] == []


def test_rebuild_waits_for_no_one_while_a_batch_holds_the_folder(tmp_path: Path) -> None:
    out = folder_with_log(tmp_path)
    with open_folder(out, None):
        with pytest.raises(JournalError, match="another kling-i2v batch is running"):
            rebuild_journal(out)
        done = subprocess.run([sys.executable, "-m", "kling_i2v.batchfolder", "rebuild", str(out)],
                              check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "another kling-i2v batch is running" in done.stderr
    rebuild_journal(out)  # the lock went with the run


@pytest.mark.parametrize(
    ("row", "task_id", "words"),
    [
        ("k2", "", "is not a task id"),
        ("k2", "T\x1b[2J", "is not a task id"),
        ("k2", "9" * 201, "is not a task id"),
        (1, "T9", "row 1 .* is submitted; only an ambiguous row"),
        (7, "T9", "no row matches '7'"),
        ("k", "T9", "no row matches 'k'"),  # a key prefix counts from 6 characters
    ],
)
def test_adopt_refuses_what_it_cannot_link(tmp_path: Path, row: str | int, task_id: str, words: str) -> None:
    out = folder_with_log(tmp_path)
    rebuild_journal(out)  # k2 becomes ambiguous
    with pytest.raises(JournalError, match=words):
        adopt(out, row, task_id)
    assert [r["event"] for r in read_log(out / LOG_NAME)[1]] == ["sending", "created", "sending"]


def test_a_key_prefix_matching_two_rows_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open_folder(out, None) as folder:
        folder.journal.add([new_row("abcdef1", 1), new_row("abcdef2", 2)])
    with pytest.raises(JournalError, match="more than one row matches 'abcdef'"):
        adopt(out, "abcdef", "T1")


@pytest.mark.fake_gateway(seed=0)
def test_a_rebuilt_folder_resumes_without_sending_an_unanswered_create_again(
        fake_gateway: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    image = tmp_path / "cat.png"
    image.write_bytes(sample_image_path().read_bytes())
    manifest = tmp_path / "shots.csv"
    manifest.write_text("image,prompt\n" + "".join(f"cat.png,shot {n}\n" for n in range(1, 4)))
    out = tmp_path / "out"
    argv = ["batch", str(manifest), "--out", str(out), "--poll-interval", "0.05", "--concurrency", "1",
            "--base-url", fake_gateway.base_url, "--token", fake_gateway.token]
    fake_gateway.inject(Fault.drop_after_create(), on="create", times=1)  # a task made, no answer
    assert cli_main(argv) == ExitCode.AMBIGUOUS, capsys.readouterr().err
    made = len(fake_gateway.tasks)
    (out / JOURNAL_NAME).unlink()  # the journal is lost; its task log is not
    for side in ("-wal", "-shm"):
        (out / f"{JOURNAL_NAME}{side}").unlink(missing_ok=True)
    assert main(["rebuild", str(out)]) == 0
    assert cli_main(argv) == ExitCode.AMBIGUOUS  # the row may have a task: never sent blindly
    capsys.readouterr()
    assert len(fake_gateway.tasks) == made
    with Journal.in_folder(out) as journal:
        states = sorted(row.state.value for row in journal.rows())
    assert states.count(RowState.AMBIGUOUS.value) == 1
    assert states.count(RowState.DOWNLOADED.value) == len(states) - 1
