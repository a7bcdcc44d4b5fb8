"""The journal, the task log and the output folder's rules, on real files (issue 11.4).

Durability cannot be seen by a kill -9 test (the OS keeps what was written), so the
settings it rests on are asserted directly: the SQLite pragmas, and an fsync of the task
log holding each create before that create is sent, and each task id before the journal
records it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kling_i2v import AsyncKlingClient
from kling_i2v.batch import BatchOptions, adopt, batch_client, run_batch
from kling_i2v.batchfolder import created_record, open_folder, sending_record
from kling_i2v.journal import JOURNAL_NAME, Journal, JournalError, NewRow, RowState
from kling_i2v.manifest import read_rows
from kling_i2v.tasklog import LOG_NAME, TaskLog, TaskLogError, read_log
from kling_i2v.testing import FakeGateway, sample_image_path

TOKEN = "sk-journal-test"
FAST = BatchOptions(poll_interval=0.05)


pytestmark = pytest.mark.fake_gateway(tokens=(TOKEN,), seed=1)  # the `gw` of conftest.py


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    lines = ["image,prompt"] + [f"cat.png,shot {n}" for n in range(1, 6)]
    path = tmp_path / "shots.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(gw: FakeGateway, manifest: Path, out: Path, options: BatchOptions = FAST,
        client: AsyncKlingClient | None = None) -> Any:
    async def go() -> Any:
        async with client or batch_client(options, TOKEN, base_url=gw.base_url) as kling:
            return await run_batch(read_rows(manifest), kling, out, options)
    return asyncio.run(go())


def new_row(key: str, line: int) -> NewRow:
    return NewRow(key=key, line=line, image="cat.png", output=f"{key}.mp4", fields={"prompt": key})


# ============================================================================ durability


def test_the_journal_runs_in_wal_mode_with_normal_sync(tmp_path: Path) -> None:
    with Journal(tmp_path / JOURNAL_NAME) as journal:
        # NORMAL in WAL mode: a commit survives kill -9; the money commits are fsync'd by
        # the task log first (the tests below), so power loss cannot lose a task id
        assert journal.pragmas() == {"journal_mode": "wal", "synchronous": 1}


def test_row_states_are_stored_as_journals_written_before_have_them() -> None:
    # literal: a journal on disk holds these strings; a renamed state would strand its rows
    assert [state.value for state in RowState] == [
        "pending", "submitting", "submitted", "succeeded", "downloaded", "failed", "ambiguous"]


def test_each_answer_moves_the_row_and_records_its_attempt(tmp_path: Path) -> None:
    with Journal(tmp_path / JOURNAL_NAME) as journal:
        journal.add([NewRow(key=k, line=n, image="i", output=f"{k}.mp4", fields={})
                     for n, k in enumerate("abcd")])
        for key in "abcd":
            journal.submitting(key, f"ext-{key}")
        assert journal.submitted("a", "t-a").task_id == "t-a"
        assert journal.refused("b", "busy").state is RowState.PENDING
        assert journal.ambiguous("c", "reset").state is RowState.AMBIGUOUS
        adopted = journal.adopt("c", "t-c")
        assert (adopted.state, adopted.task_id, adopted.reason) == (
            RowState.SUBMITTED, "t-c", "adopted task t-c")
        with pytest.raises(JournalError, match="cannot go to submitted from pending"):
            journal.submitted("b", "t-b")
        attempts = {a.external_task_id: (a.outcome, a.task_id) for a in journal.attempts()}
    assert attempts == {"ext-a": ("created", "t-a"), "ext-b": ("refused", None),
                        "ext-c": ("adopted", "t-c"), "ext-d": (None, None)}


def test_each_create_is_fsynced_to_the_log_before_it_is_sent(
        gw: FakeGateway, manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(LOG_NAME):
            events.append(("fsync", Path(target).read_text()))

    monkeypatch.setattr(os, "fsync", fsync)
    real_submitted = Journal.submitted

    def submitted(self: Journal, key: str, task_id: str) -> Any:
        events.append(("journal", task_id))
        return real_submitted(self, key, task_id)

    monkeypatch.setattr(Journal, "submitted", submitted)
    client = batch_client(FAST, TOKEN, base_url=gw.base_url)
    real_create = client.create

    async def create(body: Any, **kwargs: Any) -> Any:
        events.append(("create", body["external_task_id"]))
        return await real_create(body, **kwargs)

    monkeypatch.setattr(client, "create", create)
    result = run(gw, manifest, tmp_path / "out", client=client)
    assert result.counts()[RowState.DOWNLOADED] == 5

    def on_disk_before(index: int, text: str) -> bool:
        return any(kind == "fsync" and text in body for kind, body in events[:index])

    sends = [(i, value) for i, (kind, value) in enumerate(events) if kind == "create"]
    records = [(i, value) for i, (kind, value) in enumerate(events) if kind == "journal"]
    assert len(sends) == 5 and len(records) == 5
    for index, external_task_id in sends:
        assert on_disk_before(index, f'"external_task_id":"{external_task_id}"'), external_task_id
    for index, task_id in records:
        assert on_disk_before(index, f'"task_id":"{task_id}"'), task_id


def test_concurrent_log_writes_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    log = TaskLog.create(tmp_path / LOG_NAME, journal_id="j", base_url=None)
    calls.clear()

    async def write_many() -> None:
        await asyncio.gather(*(log.write(created_record(f"k{n}", f"e{n}", f"t{n}")) for n in range(50)))

    asyncio.run(write_many())
    log.close()
    _, records = read_log(tmp_path / LOG_NAME)
    assert [r["task_id"] for r in records] == [f"t{n}" for n in range(50)]
    assert 1 <= len(calls) <= 3, "50 records waiting together are one group commit, not 50 fsyncs"


def test_a_torn_last_line_is_ignored_a_damaged_middle_is_not(tmp_path: Path) -> None:
    path = tmp_path / LOG_NAME
    TaskLog.create(path, journal_id="j", base_url="http://gw").close()
    with open(path, "a") as handle:
        handle.write(json.dumps(created_record("k", "e", "t1")) + "\n" + '{"event": "crea')
    header, records = read_log(path)
    assert header["base_url"] == "http://gw" and [r["task_id"] for r in records] == ["t1"]
    with open(path, "a") as handle:
        handle.write("\n" + json.dumps(created_record("k", "e", "t2")) + "\n")
    with pytest.raises(TaskLogError, match="damaged at line 3"):
        read_log(path)


# ============================================================================ the folder's rules


def test_the_folder_lock_survives_deleted_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open_folder(out, None):
        for entry in out.iterdir():  # whatever a user deletes, the folder itself stays locked
            entry.unlink()
        with pytest.raises(JournalError, match="another kling-i2v batch is running"):
            open_folder(out, None)
        probe = ("import sys; from kling_i2v.batchfolder import open_folder\n"
                 "try:\n    open_folder(sys.argv[1], None)\nexcept Exception as e:\n    print(e)")
        other = subprocess.run([sys.executable, "-c", probe, str(out)], check=False, capture_output=True,
                               text=True, timeout=60)
        assert "another kling-i2v batch is running" in other.stdout
    with open_folder(out, None):  # released on close
        pass


def finished_folder(gw: FakeGateway, manifest: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    result = run(gw, manifest, out)
    assert result.counts()[RowState.DOWNLOADED] == 5 and len(gw.tasks) == 5
    return out


@pytest.mark.parametrize("damage", ["deleted", "emptied", "truncated", "garbage"])
def test_a_lost_journal_is_refused_then_rebuilt_from_the_log(
        gw: FakeGateway, manifest: Path, tmp_path: Path, damage: str) -> None:
    out = finished_folder(gw, manifest, tmp_path)
    journal = out / JOURNAL_NAME
    if damage == "deleted":
        journal.unlink()
    elif damage == "emptied":
        journal.write_bytes(b"")
    elif damage == "truncated":
        data = journal.read_bytes()
        journal.write_bytes(data[: len(data) // 3])
    else:
        journal.write_bytes(b"not a database" * 100)
    for side in ("-wal", "-shm"):
        Path(f"{journal}{side}").unlink(missing_ok=True)
    with pytest.raises(JournalError) as refused:
        run(gw, manifest, out)
    assert "python -m kling_i2v.batchfolder rebuild" in str(refused.value)
    assert len(gw.tasks) == 5  # nothing was created again

    done = subprocess.run([sys.executable, "-m", "kling_i2v.batchfolder", "rebuild", str(out)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = run(gw, manifest, out)
    assert result.counts()[RowState.DOWNLOADED] == 5 and len(gw.tasks) == 5


def test_a_foreign_journal_is_refused_naming_both(gw: FakeGateway, manifest: Path, tmp_path: Path) -> None:
    out = finished_folder(gw, manifest, tmp_path)
    other = tmp_path / "other"
    with open_folder(other, gw.base_url) as folder:
        folder.journal.add([new_row("x", 1)])
    shutil.copy(other / JOURNAL_NAME, out / JOURNAL_NAME)
    for side in ("-wal", "-shm"):
        Path(f"{out / JOURNAL_NAME}{side}").unlink(missing_ok=True)
    with pytest.raises(JournalError, match="does not belong with the task log"):
        run(gw, manifest, out)
    assert len(gw.tasks) == 5


def test_videos_without_journal_or_log_are_refused(gw: FakeGateway, manifest: Path, tmp_path: Path) -> None:
    out = finished_folder(gw, manifest, tmp_path)
    for name in (JOURNAL_NAME, LOG_NAME):
        (out / name).unlink()
    with pytest.raises(JournalError, match=r"5 finished video\(s\) but no journal.*new output folder"):
        run(gw, manifest, out)
    assert len(gw.tasks) == 5


def test_a_deleted_log_is_rewritten_from_the_journal(gw: FakeGateway, manifest: Path, tmp_path: Path) -> None:
    out = finished_folder(gw, manifest, tmp_path)
    (out / LOG_NAME).unlink()
    with open_folder(out, gw.base_url) as folder:
        assert any("task log was missing" in note for note in folder.notes)
    _, records = read_log(out / LOG_NAME)
    assert sorted(r["task_id"] for r in records if r["event"] == "created") == sorted(gw.tasks)


def test_another_gateway_is_refused_naming_both(gw: FakeGateway, manifest: Path, tmp_path: Path) -> None:
    out = finished_folder(gw, manifest, tmp_path)
    with pytest.raises(JournalError) as refused:
        open_folder(out, "http://127.0.0.1:9/")
    assert gw.base_url.rstrip("/") in str(refused.value) and "http://127.0.0.1:9" in str(refused.value)
    with open_folder(out, gw.base_url + "/"):  # a trailing slash is the same gateway
        pass


def test_the_log_is_replayed_into_a_journal_that_lost_commits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open_folder(out, None) as folder:
        row = new_row("k1", 1)
        folder.journal.add([row, new_row("k2", 2)])
        # as if the power went: the log has both events, the journal neither
        folder.log.write_now([sending_record(row, "ext-1", {}), created_record("k1", "ext-1", "T1"),
                              sending_record(new_row("k2", 2), "ext-2", {})])
    with open_folder(out, None) as folder:
        assert folder.journal.get("k1").state is RowState.SUBMITTED  # type: ignore[union-attr]
        assert folder.journal.get("k1").task_id == "T1"  # type: ignore[union-attr]
        assert folder.journal.get("k2").state is RowState.SUBMITTING  # type: ignore[union-attr]
        assert folder.notes


# ============================================================================ adopt


def test_adopt_links_an_ambiguous_row_to_a_task(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open_folder(out, None) as folder:
        folder.journal.add([new_row("abcdef123", 4), new_row("k2", 5)])
        folder.journal.submitting("abcdef123", "ext-a")
        folder.journal.ambiguous("abcdef123", "no answer")
    with pytest.raises(JournalError, match="only an ambiguous row"):
        adopt(out, 5, "T9")
    with pytest.raises(JournalError, match="no row matches"):
        adopt(out, "zzzzzzz", "T9")
    row = adopt(out, "abcdef", "T7")
    assert row.state is RowState.SUBMITTED and row.task_id == "T7" and row.line == 4
    _, records = read_log(out / LOG_NAME)
    assert records[-1]["how"] == "adopted" and records[-1]["task_id"] == "T7"


def test_a_run_undoes_an_adoption_the_gateway_does_not_know(gw: FakeGateway, manifest: Path,
                                                            tmp_path: Path) -> None:
    # a typo in adopt() (no gateway check there) must leave the row ambiguous, not failed
    # with advice to pay again (the fix round's A1, library side)
    from kling_i2v.testing import Fault

    out = tmp_path / "out"
    gw.inject(Fault.drop_after_create(), on="create")
    first = run(gw, manifest, out)
    (lost,) = first.ambiguous()
    adopt(out, lost.line, "nonexistent123")
    second = run(gw, manifest, out)
    (row,) = [r for r in second.rows if r.key == lost.key]
    assert row.state is RowState.AMBIGUOUS and row.task_id is None
    assert row.reason.startswith("the adopted task nonexistent123 is not known to the gateway: "
                                 "check the id")
    assert gw.count(on="create") == 5  # nothing created again
    third = run(gw, manifest, out)  # the task log's adoption is not replayed into the row
    assert [r.state for r in third.rows if r.key == lost.key] == [RowState.AMBIGUOUS]
    (task,) = [t for t in gw.tasks.values() if t.external_task_id == lost.external_task_id]
    adopt(out, lost.line, task.task_id)  # the right id, found after all
    fourth = run(gw, manifest, out)
    assert {r.state for r in fourth.rows} == {RowState.DOWNLOADED}
