"""The batch journal: one SQLite file in the output folder that says, for every row, how
far it got, so that a run killed at any moment resumes without paying twice.

    pending ──▶ submitting ──▶ submitted ──▶ succeeded ──▶ downloaded
       ▲  (refused)  │   │  ▲             │
       └─────────────┘   ▼  │ (adopt)     ▼
                     ambiguous          failed

- `submitting` is committed, with the row's `external_task_id`, *before* the create
  request is sent; `submitted`, with the task id, right after the create returns and
  before anything else happens. A row found in `submitting` when a run starts was sent by
  a process that died before writing the answer: the task may exist, so it becomes
  `ambiguous`, and is created again only on request or linked to the task the user found
  (`adopt`).
- `refused` is not a state: a create the gateway certainly turned down (429, its own
  error answers) goes back to `pending`.
- A failed row says why in `failure`: `local` (never sent: the next run checks it
  again), `gateway` (the gateway refused the create: nothing was paid; `retry_failed`
  sends it again), `task` (the task itself failed).
- Every create ever sent is also kept in `creates` (external id, outcome, task id), so a
  task the gateway accepted can always be traced to its row, even after a resubmit.

Durability: WAL mode with `synchronous=NORMAL`. A commit survives `kill -9` (it is in the
WAL, which the OS keeps), and a power cut can only lose the last commits; the two that
protect money (`submitting`, `submitted`) are also written, and fsync'd, to the task log
(tasklog.py) *before* they matter, and the log is replayed into the journal when a run
starts. So no fsync waits per row here, and none on the event loop (issue 12.2).
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import attrs

from .errors import JournalError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["JOURNAL_NAME", "Attempt", "Failure", "Journal", "JournalError", "JournalRow", "NewRow",
           "RowState"]

JOURNAL_NAME = "kling-i2v-journal.sqlite3"
_SCHEMA_VERSION = "1"

Failure = Literal["local", "gateway", "task"]


class RowState(enum.StrEnum):
    # each value is the name in lower case (StrEnum's auto()), as journals store it
    PENDING = enum.auto()
    SUBMITTING = enum.auto()
    SUBMITTED = enum.auto()
    SUCCEEDED = enum.auto()
    DOWNLOADED = enum.auto()
    FAILED = enum.auto()
    AMBIGUOUS = enum.auto()

    @property
    def final(self) -> bool:
        """Nothing more happens to the row in this run without a flag."""
        return self in (RowState.DOWNLOADED, RowState.FAILED, RowState.AMBIGUOUS)


@attrs.frozen
class JournalRow:
    key: str
    """The row's identity: a hash of what it asks for (see manifest.py)."""
    line: int
    """Where the row is in its manifest, for messages."""
    image: str
    """The image as the manifest wrote it."""
    output: str
    """The video's path, relative to the output folder."""
    state: RowState
    external_task_id: str | None = None
    task_id: str | None = None
    video_url: str | None = None
    reason: str | None = None
    """Why the row failed or is ambiguous; for others, the last problem met."""
    updated_at: float = 0.0
    failure: Failure | None = None
    """For a failed row: never sent (`local`), refused by the gateway, or the task failed."""


@attrs.frozen
class NewRow:
    """A manifest row to register (see Journal.add)."""

    key: str
    line: int
    image: str
    output: str
    fields: Mapping[str, Any]


@attrs.frozen
class Attempt:
    """One create request sent (or about to be): outcome is None while unknown."""

    external_task_id: str
    key: str
    sent_at: float
    outcome: str | None
    """`created`, `refused`, `ambiguous`, `adopted`, or None (sent, answer not recorded)."""
    task_id: str | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    line INTEGER NOT NULL,
    image TEXT NOT NULL,
    output TEXT NOT NULL UNIQUE,
    fields TEXT NOT NULL,
    state TEXT NOT NULL,
    external_task_id TEXT,
    task_id TEXT,
    video_url TEXT,
    reason TEXT,
    updated_at REAL NOT NULL,
    failure TEXT
);
CREATE TABLE IF NOT EXISTS creates (
    external_task_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    sent_at REAL NOT NULL,
    outcome TEXT,
    task_id TEXT
);
"""

_ROW_COLUMNS = ("key, line, image, output, state, external_task_id, task_id, video_url, reason,"
                " updated_at, failure")


class Journal:
    """The journal of one output folder. Use it as a context manager.

    It does not lock the folder: batchfolder.open_folder does (a run), and so do the
    repair functions there."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import sqlite3  # here, not at import: the CLI's parser reads RowState (issue 12)

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit mode: every statement outside an explicit BEGIN commits on its own
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path} cannot be opened as a kling-i2v journal ({exc})") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # 32 MiB of page cache: a 100,000-row journal stays in memory, so a commit costs
            # the same at any size (issue 12.2; benchmarks/bench_batch.py measures it)
            self._db.execute("PRAGMA cache_size=-32768")
            self._db.executescript(_SCHEMA)
            columns = {name for (_, name, *_) in self._db.execute("PRAGMA table_info(rows)")}
            if "failure" not in columns:  # a journal written before the column existed
                self._db.execute("ALTER TABLE rows ADD COLUMN failure TEXT")
            self._check_version()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path} is not a usable kling-i2v journal ({exc})") from exc

    @classmethod
    def in_folder(cls, folder: str | os.PathLike[str]) -> Journal:
        return cls(Path(folder) / JOURNAL_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def pragmas(self) -> dict[str, Any]:
        """The durability settings in force (the tests assert them)."""
        return {name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous")}

    # ------------------------------------------------------------------ reading

    def get(self, key: str) -> JournalRow | None:
        found = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM rows WHERE key = ?", (key,)).fetchone()
        return _row(found) if found else None

    def rows(self) -> list[JournalRow]:
        """Every row, in manifest order."""
        return [_row(r) for r in self._db.execute(f"SELECT {_ROW_COLUMNS} FROM rows ORDER BY line, key")]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM rows").fetchone()[0])

    def fields(self, key: str) -> dict[str, Any]:
        found = self._db.execute("SELECT fields FROM rows WHERE key = ?", (key,)).fetchone()
        return dict(json.loads(found[0])) if found else {}

    def attempts(self, key: str | None = None) -> list[Attempt]:
        query = "SELECT external_task_id, key, sent_at, outcome, task_id FROM creates"
        params: tuple[str, ...] = ()
        if key is not None:
            query += " WHERE key = ?"
            params = (key,)
        return [Attempt(*r) for r in self._db.execute(query + " ORDER BY sent_at", params)]

    def meta(self, name: str) -> str | None:
        found = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(found[0]) if found else None

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    # ------------------------------------------------------------------ writing

    def add(self, rows: Iterable[NewRow]) -> None:
        """Register rows, in one transaction: a row the journal does not know is inserted as
        pending; a known row keeps its state and output, and only its place in the manifest
        moves. A new row's output must not be another row's."""
        import sqlite3

        with self._transaction():
            for row in rows:
                cursor = self._db.execute("UPDATE rows SET line = ? WHERE key = ?", (row.line, row.key))
                if cursor.rowcount:
                    continue
                try:
                    self._db.execute(
                        "INSERT INTO rows (key, line, image, output, fields, state, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (row.key, row.line, row.image, row.output,
                         json.dumps(row.fields, sort_keys=True, default=str),
                         RowState.PENDING.value, time.time()),
                    )
                except sqlite3.IntegrityError:
                    raise JournalError(f"output {row.output} already belongs to another row") from None

    def submitting(self, key: str, external_task_id: str) -> JournalRow:
        """Committed before the create is sent (after the task log has it on disk)."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO creates (external_task_id, key, sent_at) VALUES (?, ?, ?)"
                " ON CONFLICT (external_task_id) DO UPDATE SET sent_at = excluded.sent_at,"
                " outcome = NULL",
                (external_task_id, key, time.time()),
            )
            return self._move(key, (RowState.PENDING,), RowState.SUBMITTING,
                              external_task_id=external_task_id, reason=None, failure=None)

    def submitted(self, key: str, task_id: str) -> JournalRow:
        """Committed as soon as the create returns a task id (after the task log has it)."""
        return self._answered(key, RowState.SUBMITTING, RowState.SUBMITTED, "created", task_id)

    def refused(self, key: str, reason: str) -> JournalRow:
        """The gateway certainly created nothing: back to pending."""
        return self._answered(key, RowState.SUBMITTING, RowState.PENDING, "refused", reason=reason)

    def ambiguous(self, key: str, reason: str) -> JournalRow:
        return self._answered(key, RowState.SUBMITTING, RowState.AMBIGUOUS, "ambiguous", reason=reason)

    def adopt(self, key: str, task_id: str) -> JournalRow:
        """Link an ambiguous row to the task the user found for it: polled and downloaded next."""
        return self._answered(key, RowState.AMBIGUOUS, RowState.SUBMITTED, "adopted", task_id,
                              reason=f"adopted task {task_id}")

    def unadopt(self, key: str, reason: str) -> JournalRow:
        """An adopted task the gateway does not know: the row is ambiguous again. The attempt
        keeps the wrong id, so that replaying the task log does not link it again."""
        with self._transaction():
            row = self._move(key, (RowState.SUBMITTED,), RowState.AMBIGUOUS, task_id=None,
                             reason=reason)
            self._db.execute("UPDATE creates SET outcome = 'ambiguous' WHERE external_task_id = ?",
                             (row.external_task_id,))
            return row

    def _answered(self, key: str, before: RowState, to: RowState, outcome: str,
                  task_id: str | None = None, **columns: Any) -> JournalRow:
        """A create's answer, in one transaction: the row moves and its attempt records the
        outcome (and the task id, when there is one)."""
        if task_id is not None:
            columns["task_id"] = task_id
        with self._transaction():
            row = self._move(key, (before,), to, **columns)
            self._attempt(row, outcome, task_id)
            return row

    def succeeded(self, key: str, video_url: str) -> JournalRow:
        with self._transaction():
            return self._move(key, (RowState.SUBMITTED, RowState.SUCCEEDED), RowState.SUCCEEDED,
                              video_url=video_url, reason=None)

    def downloaded(self, key: str) -> JournalRow:
        with self._transaction():
            return self._move(key, (RowState.SUCCEEDED,), RowState.DOWNLOADED, reason=None)

    def failed(self, key: str, reason: str, failure: Failure) -> JournalRow:
        """The row will not get a video: it could not be sent, the gateway refused it, or
        its task failed."""
        with self._transaction():
            row = self._move(key, (RowState.PENDING, RowState.SUBMITTING, RowState.SUBMITTED),
                             RowState.FAILED, reason=reason, failure=failure)
            if row.task_id is None and failure == "gateway":  # refused at create: nothing made
                self._attempt(row, "refused", None)
            return row

    def note(self, key: str, reason: str) -> JournalRow:
        """Record a problem on the row without changing its state."""
        with self._transaction():
            self._db.execute("UPDATE rows SET reason = ?, updated_at = ? WHERE key = ?",
                             (reason, time.time(), key))
            found = self.get(key)
            assert found is not None
            return found

    def reset(self, key: str, from_states: Iterable[RowState]) -> JournalRow:
        """Back to pending, forgetting the task: for an explicit resubmit or retry, or a
        row that was never sent. Earlier attempts stay in `creates`."""
        with self._transaction():
            return self._move(key, tuple(from_states), RowState.PENDING, external_task_id=None,
                              task_id=None, video_url=None, reason=None, failure=None)

    def redownload(self, key: str) -> JournalRow:
        """A downloaded row whose file is gone: back to succeeded."""
        with self._transaction():
            return self._move(key, (RowState.DOWNLOADED,), RowState.SUCCEEDED)

    def recover(self, reason: str) -> list[JournalRow]:
        """Rows a dead run left in `submitting` become ambiguous (called when a run starts)."""
        stuck = [_row(r) for r in self._db.execute(
            f"SELECT {_ROW_COLUMNS} FROM rows WHERE state = ?", (RowState.SUBMITTING.value,))]
        return [self.ambiguous(r.key, reason) for r in stuck]

    # ------------------------------------------------------------------ the task log, replayed

    def replay_sending(self, key: str, external_task_id: str, sent_at: float) -> bool:
        """The log says this create was about to be sent. True if the journal did not know."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO creates (external_task_id, key, sent_at) VALUES (?, ?, ?)",
                (external_task_id, key, sent_at))
            if not cursor.rowcount:
                return False
            self._db.execute(
                "UPDATE rows SET state = ?, external_task_id = ?, updated_at = ? WHERE key = ?"
                " AND state = ?",
                (RowState.SUBMITTING.value, external_task_id, time.time(), key, RowState.PENDING.value))
            return True

    def replay_created(self, key: str, external_task_id: str, task_id: str, outcome: str) -> bool:
        """The log says the gateway gave this task id. True if the journal did not know."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE creates SET outcome = ?, task_id = ? WHERE external_task_id = ?"
                " AND (task_id IS NULL OR task_id != ?)",
                (outcome, task_id, external_task_id, task_id))
            if not cursor.rowcount:
                return False
            self._db.execute(
                "UPDATE rows SET state = ?, task_id = ?, updated_at = ? WHERE key = ?"
                " AND external_task_id = ? AND state IN (?, ?, ?)",
                (RowState.SUBMITTED.value, task_id, time.time(), key, external_task_id,
                 RowState.PENDING.value, RowState.SUBMITTING.value, RowState.AMBIGUOUS.value))
            return True

    # ------------------------------------------------------------------ internals

    def _move(self, key: str, from_states: tuple[RowState, ...], to: RowState,
              **columns: Any) -> JournalRow:
        sets = ", ".join(f"{name} = ?" for name in columns)
        marks = ", ".join("?" for _ in from_states)
        found = self._db.execute(
            f"UPDATE rows SET state = ?, updated_at = ?{', ' if sets else ''}{sets}"
            f" WHERE key = ? AND state IN ({marks}) RETURNING {_ROW_COLUMNS}",
            (to.value, time.time(), *columns.values(), key, *(s.value for s in from_states)),
        ).fetchall()
        if len(found) != 1:
            current = self.get(key)
            raise JournalError(
                f"journal row {key}: cannot go to {to.value} from "
                f"{current.state.value if current else 'nowhere (no such row)'}"
            )
        return _row(found[0])

    def _attempt(self, row: JournalRow, outcome: str, task_id: str | None) -> None:
        if row.external_task_id is not None:
            self._db.execute("UPDATE creates SET outcome = ?, task_id = ? WHERE external_task_id = ?",
                             (outcome, task_id, row.external_task_id))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _check_version(self) -> None:
        import sqlite3

        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)",
                             (_SCHEMA_VERSION,))
            version = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0]
        if version != _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"journal schema {version}, this version reads {_SCHEMA_VERSION}")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _row(values: tuple[Any, ...]) -> JournalRow:
    key, line, image, output, state, external, task_id, url, reason, updated, failure = values
    return JournalRow(key=key, line=line, image=image, output=output, state=RowState(state),
                      external_task_id=external, task_id=task_id, video_url=url, reason=reason,
                      updated_at=updated, failure=failure)
