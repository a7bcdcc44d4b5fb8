"""A batch's output folder: locked for one run, and trusted only when its journal and its
task log agree (issue 11.4).

A folder that shows a batch ran in it (the task log, or finished videos) but has no
journal, or an emptied, damaged, foreign or incomplete one, is refused before anything is
sent, with the way out: rebuild the journal from the task log

    python -m kling_i2v.batchfolder rebuild OUT

or start in a new folder. The lock is `flock` on the folder itself, held while the run
lives and dropped by the OS however it dies; no file can be deleted to get past it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any, Self

import attrs

from .journal import JOURNAL_NAME, Journal, JournalError, JournalRow, NewRow, RowState
from .tasklog import LOG_NAME, TaskLog, TaskLogError, read_log

__all__ = ["BatchFolder", "adopt", "adoptable", "normalise_base_url", "open_folder", "rebuild_journal"]

_VIDEO_SUFFIXES = (".mp4", ".mov")
_SCAN_LIMIT = 100_000
"""Entries looked at when searching the folder for videos: enough for any batch."""


def rebuild_hint(folder: Path) -> str:
    return (f"rebuild the journal from the task log with `python -m kling_i2v.batchfolder "
            f"rebuild {folder}` (the old journal is kept beside it), then run the batch again")


@attrs.define
class BatchFolder:
    """An output folder opened for a run: locked, its journal checked against its log."""

    path: Path
    journal: Journal
    log: TaskLog
    base_url: str | None
    notes: list[str]
    _lock: _FolderLock

    def close(self) -> None:
        self.journal.close()
        self.log.close()
        self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def normalise_base_url(url: str) -> str:
    return url.rstrip("/")


def open_folder(folder: str | os.PathLike[str], base_url: str | None) -> BatchFolder:
    """Lock `folder` and return its journal and task log, both checked, the log replayed
    into the journal. `base_url` None: do not check which gateway the batch ran against.
    Raises JournalError, saying how to recover, when the folder cannot be trusted."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    lock = _FolderLock(path)
    try:
        return _open_locked(path, base_url, lock)
    except BaseException:
        lock.release()
        raise


def _open_locked(path: Path, base_url: str | None, lock: _FolderLock) -> BatchFolder:
    journal_path, log_path = path / JOURNAL_NAME, path / LOG_NAME
    has_log = log_path.exists()
    journal_there = journal_path.exists() and journal_path.stat().st_size > 0
    if not journal_there:
        evidence = _evidence(path, has_log)
        if evidence:
            state = "an empty journal" if journal_path.exists() else "no journal"
            raise JournalError(f"{path} holds {evidence} but {state}: nothing was sent. To "
                               f"go on, {_way_out(path, has_log)}")
    try:
        journal = Journal(journal_path)
    except JournalError as exc:
        raise JournalError(f"{exc}. Nothing was sent. To go on, {_way_out(path, has_log)}") from exc
    notes: list[str] = []
    try:
        journal_id = journal.meta("journal_id")
        if journal_id is None:
            journal_id = _adopt_unnamed(path, journal, has_log)
        if has_log:
            log = _check_and_replay(path, journal, journal_id, notes)
        else:
            log = _log_from_journal(log_path, journal, journal_id,
                                    normalise_base_url(base_url) if base_url else None)
            if journal.count():
                notes.append(f"the task log was missing: rewritten from the journal ({log_path})")
        recorded = journal.meta("base_url")
        if base_url is not None:
            base_url = normalise_base_url(base_url)
            if recorded is None:
                journal.set_meta("base_url", base_url)
            elif recorded != base_url and _nothing_made(journal):
                # e.g. a mistyped port: no task can exist on the old one, so nothing is lost
                journal.set_meta("base_url", base_url)
                notes.append(f"the batch in {path} made no task on {recorded}: it runs "
                             f"against {base_url} now")
            elif recorded != base_url:
                log.close()
                raise JournalError(
                    f"the batch in {path} ran against the gateway {recorded}, and this run is set "
                    f"to {base_url}: its tasks exist only on {recorded}. Set ANYFAST_BASE_URL (or "
                    f"--base-url) to {recorded} to resume, or use a new output folder")
    except BaseException:
        journal.close()
        raise
    return BatchFolder(path=path, journal=journal, log=log, base_url=base_url or recorded,
                       notes=notes, lock=lock)


def _adopt_unnamed(path: Path, journal: Journal, has_log: bool) -> str:
    """A journal without an id: new (or emptied), or written before the task log existed."""
    if has_log or (journal.count() == 0 and _evidence(path, has_log)):
        raise JournalError(f"the journal {journal.path} is empty or was replaced, but {path} "
                           f"holds {_evidence(path, has_log)}: nothing was sent. To go on, "
                           f"{_way_out(path, has_log)}")
    journal_id = uuid.uuid4().hex
    journal.set_meta("journal_id", journal_id)
    return journal_id


def _check_and_replay(path: Path, journal: Journal, journal_id: str, notes: list[str]) -> TaskLog:
    log_path = path / LOG_NAME
    try:
        header, records = read_log(log_path)
    except TaskLogError as exc:
        raise JournalError(f"{exc}. Nothing was sent. The journal may still be whole: move the "
                           f"log aside to have it rewritten from the journal, or use a new "
                           f"output folder") from exc
    if header.get("journal_id") != journal_id:
        raise JournalError(
            f"the journal {journal.path} does not belong with the task log {log_path} (journal "
            f"{journal_id}, log {header.get('journal_id')}): one of them was copied in from "
            f"another folder. Nothing was sent. To go on, {rebuild_hint(path)}; or use a new "
            f"output folder")
    replayed = _replay(journal, records)
    missing = sorted({r["key"] for r in records} - {r.key for r in journal.rows()})
    if missing:
        raise JournalError(
            f"the journal {journal.path} lacks {len(missing)} row(s) the task log has (it was "
            f"truncated or replaced). Nothing was sent. To go on, {rebuild_hint(path)}")
    if replayed:
        notes.append(f"{replayed} record(s) of the task log were missing from the journal: restored")
    if journal.meta("base_url") is None and isinstance(header.get("base_url"), str):
        journal.set_meta("base_url", header["base_url"])
    return TaskLog.open(log_path)


def _replay(journal: Journal, records: list[dict[str, Any]]) -> int:
    known = {row.key for row in journal.rows()}
    replayed = 0
    for record in records:
        if record["key"] not in known:
            continue
        if record["event"] == "sending":
            replayed += journal.replay_sending(record["key"], record["external_task_id"],
                                               float(record.get("at") or 0.0))
        else:
            replayed += journal.replay_created(record["key"], record["external_task_id"],
                                               record["task_id"], str(record.get("how", "created")))
    return replayed


def _log_from_journal(log_path: Path, journal: Journal, journal_id: str,
                      base_url: str | None = None) -> TaskLog:
    log = TaskLog.create(log_path, journal_id=journal_id, base_url=journal.meta("base_url") or base_url)
    rows = {row.key: row for row in journal.rows()}
    records: list[dict[str, Any]] = []
    for attempt in journal.attempts():
        row = rows.get(attempt.key)
        if row is None:
            continue
        records.append(sending_record(row, attempt.external_task_id, journal.fields(row.key),
                                      at=attempt.sent_at))
        if attempt.task_id is not None:
            records.append(created_record(row.key, attempt.external_task_id, attempt.task_id,
                                          how=attempt.outcome or "created"))
    if records:
        log.write_now(records)
    return log


def sending_record(row: JournalRow | NewRow, external_task_id: str, fields: Any, *,
                   at: float | None = None) -> dict[str, Any]:
    return {"event": "sending", "key": row.key, "external_task_id": external_task_id,
            "line": row.line, "image": row.image, "output": row.output, "fields": fields,
            "at": time.time() if at is None else at}


def created_record(key: str, external_task_id: str, task_id: str, *, how: str = "created") -> dict[str, Any]:
    return {"event": "created", "key": key, "external_task_id": external_task_id,
            "task_id": task_id, "how": how, "at": time.time()}


# ============================================================================ repairs


def rebuild_journal(folder: str | os.PathLike[str]) -> Path:
    """A new journal from the task log; the old journal, if any, is renamed beside it.
    Returns the path the old journal was moved to (or the new journal's, if there was none).
    Rows the log has are back as they were sent: polled and downloaded (or ambiguous, if
    the log has no task id for them); manifest rows the log lacks were never sent."""
    path = Path(folder)
    lock = _FolderLock(path)
    try:
        log_path = path / LOG_NAME
        if not log_path.exists():
            raise JournalError(f"{path} has no task log ({LOG_NAME}) to rebuild the journal from")
        try:
            header, records = read_log(log_path)
        except TaskLogError as exc:
            raise JournalError(str(exc)) from exc
        journal_path = path / JOURNAL_NAME
        kept = journal_path
        if journal_path.exists():
            kept = journal_path.with_name(f"{JOURNAL_NAME}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            journal_path.rename(kept)
            for suffix in ("-wal", "-shm"):
                side = journal_path.with_name(JOURNAL_NAME + suffix)
                if side.exists():
                    side.rename(kept.with_name(kept.name + suffix))
        with Journal(journal_path) as journal:
            journal.set_meta("journal_id", str(header.get("journal_id") or uuid.uuid4().hex))
            if isinstance(header.get("base_url"), str):
                journal.set_meta("base_url", header["base_url"])
            journal.add(NewRow(key=r["key"], line=int(r.get("line") or 0), image=str(r.get("image", "")),
                               output=r["output"], fields=r.get("fields") or {})
                        for r in _first_sending(records))
            _replay(journal, records)
            journal.recover("rebuilt from the task log: this create was sent but the log has no "
                            "task id for it, so the task may exist (look for its external_task_id)")
        return kept
    finally:
        lock.release()


def _nothing_made(journal: Journal) -> bool:
    """Whether every create the journal records was answered "refused": never sent, or
    refused in the gateway's own error shape, which means no task was recorded and nothing
    charged (gateway-facts.md, Create, Billing). Any other outcome may have made a task."""
    return (all(attempt.outcome == "refused" for attempt in journal.attempts())
            and all(row.task_id is None for row in journal.rows()))


def _first_sending(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["event"] == "sending":
            seen.setdefault(record["key"], record)
    return list(seen.values())


def adopt(folder: str | os.PathLike[str], row: str | int, task_id: str) -> JournalRow:
    """Link the task a user found (dashboard, callback) to an ambiguous row of the batch in
    `folder`: the next run polls it and downloads its video. `row` is the row's key (or a
    unique prefix of it, at least 6 characters) or its line in the manifest."""
    task_id = task_id.strip()
    if not task_id or len(task_id) > 200 or not task_id.isprintable():
        raise JournalError(f"adopt: {task_id[:60]!r} is not a task id")
    with open_folder(folder, None) as opened:
        found = _adoptable(opened.journal, row)
        assert found.external_task_id is not None  # _adoptable checked it
        opened.log.write_now([created_record(found.key, found.external_task_id, task_id, how="adopted")])
        return opened.journal.adopt(found.key, task_id)


def adoptable(folder: str | os.PathLike[str], row: str | int) -> JournalRow:
    """The ambiguous row `adopt` would link, or JournalError saying why none: what a caller
    checks before asking the gateway about the task (a typo must not touch the row)."""
    with open_folder(folder, None) as opened:
        return _adoptable(opened.journal, row)


def _adoptable(journal: Journal, row: str | int) -> JournalRow:
    found = _find_row(journal, row)
    if found.state is not RowState.AMBIGUOUS or found.external_task_id is None:
        raise JournalError(f"adopt: row {found.line} ({found.key[:12]}) is {found.state.value}; "
                           "only an ambiguous row can be linked to a task")
    return found


def _find_row(journal: Journal, row: str | int) -> JournalRow:
    rows = journal.rows()
    text = str(row).strip()
    if text.isdigit():
        matches = [r for r in rows if r.line == int(text)]
    else:
        matches = [r for r in rows if r.key == text] or (
            [r for r in rows if r.key.startswith(text)] if len(text) >= 6 else [])
    if len(matches) != 1:
        many = "more than one row matches" if matches else "no row matches"
        raise JournalError(f"adopt: {many} {text!r} (give a manifest line or a row key)")
    return matches[0]


# ============================================================================ internals


def _evidence(path: Path, has_log: bool) -> str:
    """What shows that a batch ran in `path` (the log, finished videos), or ''."""
    if has_log:
        return f"a task log ({LOG_NAME})"
    videos = 0
    for seen, entry in enumerate(path.rglob("*")):
        if seen >= _SCAN_LIMIT:
            break
        if entry.suffix.lower() in _VIDEO_SUFFIXES and not entry.name.startswith("."):
            videos += 1
    return f"{videos} finished video(s)" if videos else ""


def _way_out(path: Path, has_log: bool) -> str:
    if has_log:
        return f"{rebuild_hint(path)}; or use a new output folder"
    return ("use a new output folder (or move the videos out of this one): without the journal "
            "or its task log, a run here would create, and pay for, every row again")


class _FolderLock:
    """`flock` on the folder itself: exclusive, dropped by the OS when the process dies."""

    def __init__(self, folder: Path) -> None:
        busy = f"another kling-i2v batch is running with the output folder {folder}"
        self._handle: IO[bytes] | int | None
        if sys.platform == "win32":  # pragma: no cover - no flock: a lock file, as before
            import msvcrt

            handle = open(folder / ".kling-i2v-journal.lock", "ab")  # noqa: SIM115 - holds the lock
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            except OSError:
                handle.close()
                raise JournalError(busy) from None
            self._handle = handle
            return
        import fcntl

        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(busy) from None
        self._handle = fd

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if isinstance(handle, int):
            os.close(handle)  # closing drops the flock
        elif handle is not None:  # pragma: no cover - Windows
            handle.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kling_i2v.batchfolder",
                                     description="repair a kling-i2v batch output folder")
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild = commands.add_parser("rebuild", help="rebuild the journal from the task log")
    rebuild.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        kept = rebuild_journal(args.folder)
    except (JournalError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if kept.name != JOURNAL_NAME:
        print(f"the old journal is kept as {kept}")
    print(f"rebuilt {args.folder / JOURNAL_NAME} from the task log; run the batch again to go on")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
