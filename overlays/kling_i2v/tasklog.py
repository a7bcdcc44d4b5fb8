"""The task log: a second, independent record of every create a batch sent and every task
id the gateway returned, beside the journal (issue 11.4).

`kling-i2v-tasks.jsonl` is append-only JSON Lines. Its first line names the journal it
belongs to (`journal_id`) and the gateway the batch ran against (`base_url`); then

    {"event": "sending", "key", "external_task_id", "line", "image", "output", "fields", "at"}
    {"event": "created", "key", "external_task_id", "task_id", "how": "created"|"adopted", "at"}

A `sending` line is on disk (fsync'd) before its create is sent and a `created` line
before the journal records the task id, so the log alone can rebuild the journal: a
create with a `created` line is a task to poll and download, one with only `sending` may
have made a task (ambiguous). The rows' requests are in the `sending` lines.

Writes from the event loop are group-committed: every record queued while one fsync is
running goes to disk with the next one, in a worker thread, so the loop never waits on
fsync and N concurrent creates cost about one fsync, not N (issue 12.2).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import TaskLogError

__all__ = ["LOG_NAME", "LogHeader", "TaskLog", "TaskLogError", "read_log"]

LOG_NAME = "kling-i2v-tasks.jsonl"
_KIND = "kling-i2v task log"
_VERSION = 1
_MAX_LINE = 1 << 20
"""A record holds one row's request fields (prompts of a few KB): a longer line is damage."""


LogHeader = Mapping[str, Any]


class TaskLog:
    """An open task log, appended to by one process (the one holding the folder lock)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._watched: dict[Path, int] = {path: os.fstat(fd).st_ino}
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, path: Path, *, journal_id: str, base_url: str | None) -> TaskLog:
        """A new log holding only its header, on disk (file and folder entry) on return."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        log = cls(path, fd)
        log.write_now([{"kind": _KIND, "version": _VERSION, "journal_id": journal_id,
                        "base_url": base_url, "at": time.time()}])
        _fsync_folder(path.parent)
        return log

    @classmethod
    def open(cls, path: Path) -> TaskLog:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        return cls(path, fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ writing

    def write_now(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append and fsync, blocking: for set-up and repairs, not the event loop."""
        self._append(b"".join(_encode(r) for r in records))

    async def write(self, record: Mapping[str, Any]) -> None:
        """Append and fsync without blocking the event loop; returns once on disk.

        Before a `sending` record (a create about to cost money) the log and the journal
        must still be the files the run opened; a task id that arrives is written anyway:
        the log is where it can be found again."""
        if record.get("event") == "sending":
            self.check_intact()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((_encode(record), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._append, b"".join(line for line, _ in batch))
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def watch(self, path: Path) -> None:
        """Also check, before every append, that `path` (the journal) is still the same file."""
        self._watched[path] = os.stat(path).st_ino

    def check_intact(self) -> None:
        """Raise if the log or the journal was deleted or replaced since the run began:
        what is written next would go to a file nobody can find."""
        for path, inode in self._watched.items():
            try:
                current: int | None = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != inode:
                raise TaskLogError(f"{path} was deleted or replaced during the run; stopping "
                                   "before a task id goes unrecorded")


def read_log(path: Path) -> tuple[LogHeader, list[dict[str, Any]]]:
    """The header and records of a task log. A last line cut short (the process died while
    appending it, before its fsync returned, so nothing relied on it) is ignored."""
    lines = list(_lines(path))
    if not lines:
        raise TaskLogError(f"the task log {path} is empty")
    records: list[dict[str, Any]] = []
    for number, (text, complete) in enumerate(lines, 1):
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as exc:
            if not complete and number == len(lines):
                break
            raise TaskLogError(f"the task log {path} is damaged at line {number} ({exc})") from None
        records.append(record)
    if not records or records[0].get("kind") != _KIND:
        raise TaskLogError(f"{path} is not a kling-i2v task log")
    for number, record in enumerate(records[1:], 2):
        if not _valid(record):
            raise TaskLogError(f"the task log {path} is damaged at line {number} (unexpected record)")
    return records[0], records[1:]


def _valid(record: Mapping[str, Any]) -> bool:
    needed = {"sending": ("key", "external_task_id", "output"),
              "created": ("key", "external_task_id", "task_id")}.get(str(record.get("event")))
    return needed is not None and all(isinstance(record.get(name), str) for name in needed)


def _lines(path: Path) -> Iterator[tuple[str, bool]]:
    with open(path, "rb") as handle:
        while True:
            raw = handle.readline(_MAX_LINE + 1)
            if not raw:
                return
            if len(raw) > _MAX_LINE:
                raise TaskLogError(f"the task log {path} has a line over {_MAX_LINE} bytes: damaged")
            complete = raw.endswith(b"\n")
            try:
                yield raw.decode("utf-8").rstrip("\n"), complete
            except UnicodeDecodeError:
                raise TaskLogError(f"the task log {path} is not UTF-8: damaged") from None


def _encode(record: Mapping[str, Any]) -> bytes:
    # ASCII-only: control characters in server text are escaped, never raw in the file
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode()


def _fsync_folder(folder: Path) -> None:
    """Make a new file's directory entry durable (POSIX; a no-op where folders cannot be
    opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
