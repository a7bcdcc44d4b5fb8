"""What `kling-i2v batch` prints: its progress bars and its summary (as a table, or as
JSON). Apart from `_output` so that the other commands do not load the journal (issue 12:
start-up of `status --json`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..journal import JournalRow, RowState
from ._exit import ExitCode
from ._output import Output, _Bars

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, TaskID

    from ..batch import BatchResult

__all__ = ["BatchDisplay", "batch_json", "print_batch"]

_DONE = (RowState.DOWNLOADED, RowState.FAILED, RowState.AMBIGUOUS)
_NOTE_EVERY = 2.0  # seconds: 429 pauses come in bursts; one line per burst is enough


class BatchDisplay(_Bars):
    """The batch's progress bars (a BatchObserver): rows sent, rows done, counts by state."""

    def __init__(self, output: Output, total: int) -> None:
        super().__init__(output)
        self._total = total
        self._sent: TaskID | None = None
        self._done: TaskID | None = None
        self._last_note: dict[str, float] = {}
        self.notes: list[str] = []

    def _columns(self) -> tuple[ProgressColumn, ...]:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        return (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"), TimeElapsedColumn())

    def _start(self, progress: Progress) -> None:
        self._sent = progress.add_task("created", total=self._total, detail="")
        self._done = progress.add_task("finished", total=self._total, detail="")

    def changed(self, row: JournalRow, counts: Mapping[RowState, int]) -> None:
        if self._progress is None or self._sent is None or self._done is None:
            return
        waiting = counts[RowState.PENDING] + counts[RowState.SUBMITTING]
        self._progress.update(self._sent, completed=self._total - waiting,
                              detail=f"{counts[RowState.SUBMITTING]} sending")
        done = sum(counts[s] for s in _DONE)
        detail = " · ".join(f"{counts[s]} {s.value}" for s in _DONE if counts[s])
        running = counts[RowState.SUBMITTED] + counts[RowState.SUCCEEDED]
        self._progress.update(self._done, completed=done,
                              detail=f"{running} running" + (f" · {detail}" if detail else ""))

    def note(self, message: str) -> None:
        self.notes.append(message)
        if self._output.json_mode:
            return
        topic = message.split(":", 1)[0]
        now = time.monotonic()
        if now - self._last_note.get(topic, -_NOTE_EVERY) < _NOTE_EVERY:
            return
        self._last_note[topic] = now
        console = self._progress.console if self._progress is not None else self._output.err
        console.print(self._output.redact(message), style="yellow")


def _file(result: BatchResult, row: JournalRow) -> str | None:
    return str(result.path_of(row)) if row.state is RowState.DOWNLOADED else None


def batch_json(result: BatchResult, source: str, code: ExitCode,
               fetch: Mapping[str, str]) -> dict[str, Any]:
    """The summary as JSON; `fetch` holds, by row key, the command that downloads a row's
    video on its own (rows whose task succeeded but whose video is not saved yet)."""
    return {
        "source": source,
        "out": str(result.out_dir),
        "journal": str(result.journal_path),
        "stopped": result.stopped,
        "exit_code": int(code),
        "error": None if result.error is None else str(result.error),
        "counts": {state.value: n for state, n in result.counts().items()},
        "recovered": result.recovered,
        "other_rows": result.other_rows,
        "rows": [
            {
                "line": row.line,
                "key": row.key,
                "image": row.image,
                "state": row.state.value,
                "task_id": row.task_id,
                "external_task_id": row.external_task_id,
                "file": _file(result, row),
                "reason": row.reason,
                "failure": row.failure,
                "fetch_again": fetch.get(row.key),
                # what --fit did to the row's images, by field (rows created in this run)
                "fit": dict(result.fits[row.key]) if row.key in result.fits else None,
            }
            for row in result.rows
        ],
    }


def print_batch(output: Output, result: BatchResult, source: str, rerun: str,
                fetch: Mapping[str, str]) -> None:
    """The summary; `rerun` is the command that runs this batch again, `fetch` the one that
    downloads a row's video (see `batch_json`), for hints."""
    from rich.table import Table

    counts = result.counts()
    states = Table(title=output.redact(f"batch {source}"), title_justify="left", show_edge=False)
    states.add_column("state")
    states.add_column("rows", justify="right")
    styles = {RowState.DOWNLOADED: "green", RowState.FAILED: "red", RowState.AMBIGUOUS: "yellow"}
    for state, count in counts.items():
        if count:
            states.add_row(state.value, str(count), style=styles.get(state))
    states.add_row("total", str(len(result.rows)), style="bold")
    output.out.print(states)

    failed = [r for r in result.rows if r.state is RowState.FAILED]
    if failed:
        table = Table(title="failed", title_justify="left", show_edge=False, title_style="red")
        for column in ("line", "image", "task", "reason"):
            _add_column(table, column, [r.task_id or "-" for r in failed] if column == "task" else None)
        for row in failed:
            table.add_row(*map(output.redact, (str(row.line), row.image, row.task_id or "-",
                                               row.reason or "")))
        output.out.print(table)
    # "gateway": no task was made (refused, or never reached: the reason says which)
    how = {"gateway": "not created, nothing was paid: send {them} again with --retry-failed",
           "local": "never sent: fix {them}, and the next run checks {them} again",
           "task": "the task failed: --retry-failed creates {them} again (and pays again)"}
    for failure, text in how.items():
        lines = [str(r.line) for r in failed if r.failure == failure]
        if lines:
            them = "them" if len(lines) > 1 else "it"
            output.line(f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)}: "
                        + text.format(them=them), style="red")

    ambiguous = [r for r in result.rows if r.state is RowState.AMBIGUOUS]
    if ambiguous:
        table = Table(title="ambiguous: a task may exist", title_justify="left", show_edge=False,
                      title_style="yellow")
        for column in ("line", "image", "external_task_id", "reason"):
            _add_column(table, column, [r.external_task_id or "-" for r in ambiguous]
                        if column == "external_task_id" else None)
        for row in ambiguous:
            table.add_row(*map(output.redact, (str(row.line), row.image,
                                               row.external_task_id or "-", row.reason or "")))
        output.out.print(table)
        output.line("look for each external_task_id in your anyfast.ai task list (or what your "
                    "callback_url received); link a task you find with this command, and the run "
                    "polls and downloads it:", style="yellow")
        output.line(f"  {rerun} --adopt {ambiguous[0].line}=TASK_ID", style="yellow")
        output.line("rows with no task are created again only with --resubmit-ambiguous "
                    "(if a task exists after all, that pays twice)", style="yellow")

    unfinished = sum(counts[s] for s in (RowState.PENDING, RowState.SUBMITTING,
                                         RowState.SUBMITTED, RowState.SUCCEEDED))
    if unfinished:
        output.line(f"{unfinished} row(s) not finished: {_resume_hint(result.error)}")
    notes = [r for r in result.rows if r.state is RowState.SUCCEEDED and r.reason]
    for row in notes:
        again = f"; fetch it again with {fetch[row.key]}" if row.key in fetch else ""
        output.line(f"line {row.line}: {row.reason}{again}", style="yellow")
    _print_fits(output, result)
    downloaded = counts[RowState.DOWNLOADED]
    output.line(f"videos:  {_shown(result.out_dir)} ({downloaded} downloaded)")
    output.line(f"journal: {_shown(result.journal_path)}")
    if result.recovered:
        output.line(f"{result.recovered} row(s) were mid-create when an earlier run stopped; "
                    "they are ambiguous now", style="yellow")
    if result.other_rows:
        output.line(f"the journal also has {result.other_rows} row(s) this manifest does not "
                    "(changed rows, or another manifest); they were left alone")


def _resume_hint(error: BaseException | None) -> str:
    """How to resume: after an error that would stop a rerun the same way, what to fix
    first (gateway-facts.md "Errors": a bad, expired or exhausted key is 401; a short
    balance is 403 insufficient_user_quota or quota_not_enough; a gateway never reached
    answered nothing)."""
    from ..errors import APIConnectionError, AuthenticationError, InsufficientBalanceError

    again = "run the same command again to resume"
    if isinstance(error, AuthenticationError):
        return f"fix the API token first (ANYFAST_API_KEY or --token), then {again}"
    if isinstance(error, InsufficientBalanceError):
        return f"top up the account's balance first, then {again}"
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return f"check that the gateway can be reached (--base-url or ANYFAST_BASE_URL), then {again}"
    return again


def _add_column(table: Any, name: str, ids: list[str] | None) -> None:
    """A column that folds long text, or, for `ids`, one that is never wrapped nor cut: an
    id is copied from the terminal, and a wrapped one copies as two pieces. Its width is
    the longest id, so the other columns give way first."""
    if ids is None:
        table.add_column(name, overflow="fold")
    else:
        table.add_column(name, no_wrap=True, overflow="ignore",
                         min_width=max([len(name), *map(len, ids)]))


_SHOWN_FITS = 5


def _print_fits(output: Output, result: BatchResult) -> None:
    """What --fit changed, for the first rows (--json has every row's)."""
    fitted = [(row, field, summary) for row in result.rows
              for field, summary in result.fits.get(row.key, {}).items()]
    for row, field, summary in fitted[:_SHOWN_FITS]:
        output.line(f"line {row.line}: fit {field} {row.image}: {summary}")
    if len(fitted) > _SHOWN_FITS:
        output.line(f"... and {len(fitted) - _SHOWN_FITS} more images fitted (--json lists them all)")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path.resolve())
