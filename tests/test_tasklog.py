"""kling_i2v.tasklog: the append-only record of every create a batch sent, on real files.

How a batch uses it (fsync before each create, group commits, rebuilding a journal from
it) is tested end to end against the fake gateway in test_journal.py; this file pins the
log's own promises: what it writes, what it refuses to read, and when it stops writing.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from kling_i2v import JournalError, KlingError, TaskLogError
from kling_i2v.tasklog import LOG_NAME, TaskLog, read_log

SENDING = {"event": "sending", "key": "k1", "external_task_id": "ext-1", "line": 2,
           "image": "cat.png", "output": "cat.mp4", "fields": {"prompt": "p"}, "at": 1.0}
CREATED = {"event": "created", "key": "k1", "external_task_id": "ext-1", "task_id": "860260",
           "how": "created", "at": 2.0}


def new_log(folder: Path) -> TaskLog:
    return TaskLog.create(folder / LOG_NAME, journal_id="j-1", base_url="http://127.0.0.1:9")


def test_a_new_log_names_its_journal_and_gateway_and_reads_back_its_records(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.write_now([SENDING, CREATED])
    log.close()
    header, records = read_log(tmp_path / LOG_NAME)
    assert (header["kind"], header["journal_id"], header["base_url"]) == \
        ("kling-i2v task log", "j-1", "http://127.0.0.1:9")
    assert records == [SENDING, CREATED]
    lines = (tmp_path / LOG_NAME).read_text().splitlines()
    assert len(lines) == 3  # one JSON document a line, the header first


def test_records_written_from_the_event_loop_are_on_disk_when_write_returns(tmp_path: Path) -> None:
    log = new_log(tmp_path)

    async def run() -> None:
        await asyncio.gather(log.write(SENDING), log.write(CREATED))

    asyncio.run(run())
    # read by another handle, as a process started after a crash would
    assert read_log(tmp_path / LOG_NAME)[1] == [SENDING, CREATED]
    log.close()


def test_a_log_is_never_created_over_an_existing_one(tmp_path: Path) -> None:
    new_log(tmp_path).close()
    with pytest.raises(FileExistsError):
        new_log(tmp_path)


def test_server_text_is_stored_escaped_never_as_raw_control_bytes(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.write_now([{**CREATED, "task_id": "86\x1b]0;pwned\x07 0\u202e"}])
    log.close()
    raw = (tmp_path / LOG_NAME).read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw and raw.isascii()
    assert read_log(tmp_path / LOG_NAME)[1][0]["task_id"] == "86\x1b]0;pwned\x07 0\u202e"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b'{"kind": "something else"}\n', "is not a kling-i2v task log"),
        (b"[1, 2]\n", "damaged at line 1"),
        (b'{"kind": "kling-i2v task log"}\n{"event": "created", "key": "k1"}\n', "damaged at line 2 (unexpected record)"),
        (b'{"kind": "kling-i2v task log"}\n{"event": "deleted", "key": "k1"}\n', "damaged at line 2 (unexpected record)"),
        (b'{"kind": "kling-i2v task log"}\n{"broken\n{"event": "x"}\n', "damaged at line 2"),
        (b'{"kind": "kling-i2v task log", "x": "\xff\xfe"}\n', "is not UTF-8"),
        (b'{"kind": "kling-i2v task log"}\n' + b"x" * (1 << 20) + b"\n", "has a line over 1048576 bytes"),
    ],
)
def test_a_damaged_log_is_refused_saying_where(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / LOG_NAME
    path.write_bytes(content)
    with pytest.raises(TaskLogError, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_log(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, JournalError) and isinstance(caught.value, KlingError)


@pytest.mark.parametrize("replaced", ["log", "journal"])
def test_no_create_is_logged_once_the_log_or_journal_was_replaced(tmp_path: Path, replaced: str) -> None:
    journal = tmp_path / "journal.sqlite"
    journal.write_bytes(b"journal")
    log = new_log(tmp_path)
    log.watch(journal)
    target = tmp_path / LOG_NAME if replaced == "log" else journal
    os.replace(target, target.with_name("moved"))
    target.write_bytes(b"")  # a new file under the old name: another inode

    async def run() -> None:
        with pytest.raises(TaskLogError, match="deleted or replaced during the run"):
            await log.write(SENDING)
        # a task id that did arrive is still written: the log is where it can be found again
        await log.write(CREATED)

    asyncio.run(run())
    log.close()
    moved = (tmp_path / "moved") if replaced == "log" else (tmp_path / LOG_NAME)
    events = [json.loads(line).get("event") for line in moved.read_text().splitlines()]
    assert events == [None, "created"]
