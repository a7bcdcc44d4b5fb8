"""What `kling-i2v` prints: one JSON document with --json, readable text otherwise.

stdout carries the result; stderr carries progress bars, notes and errors (with --json,
errors are the JSON document on stdout, so scripts read one place). rich is imported only
when something is printed for humans, so --json runs and --help do not pay for it. Every
line goes through `redact`, which blanks the API token should it ever show up.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..journal import JournalRow, RowState
from ..tasks import Task
from ._exit import ExitCode

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, TaskID

    from ..batch import BatchResult

__all__ = ["BatchDisplay", "Output", "TaskProgress", "batch_json", "print_batch", "task_json"]

_MIN_SECRET = 8


class Output:
    def __init__(self, *, json_mode: bool, secret: str | None = None) -> None:
        self.json_mode = json_mode
        self._secret = secret or None
        self._out: Console | None = None
        self._err: Console | None = None

    def set_secret(self, secret: str | None) -> None:
        self._secret = secret or None

    @property
    def live(self) -> bool:
        """Whether progress bars are drawn: text output, with stderr a terminal (a bar in a
        log file is noise)."""
        return not self.json_mode and self.err.is_terminal

    def redact(self, text: str) -> str:
        """`text` ready for a terminal or a file: without the token, escape sequences or
        control characters but newline and tab (`_text.clean`: much of what is printed
        came from the server, and the client's own cleaning is not relied on here), and
        printable even if it holds a lone surrogate (JSON text can; UTF-8 cannot)."""
        from .._text import clean

        # a token too short to be a real one (a test's "x") would only mangle the output
        secret = self._secret if self._secret and len(self._secret) >= _MIN_SECRET else None
        return clean(text, secrets=(secret,) if secret else ())

    def scrub(self, data: Any) -> Any:
        """`data` for --json with every string in it `redact`ed, keys too: json.dumps
        escapes C0 controls but passes ESC-free C1 sequences (0x9b CSI) and the token
        through as they are."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, Mapping):
            return {self.redact(str(key)): self.scrub(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [self.scrub(value) for value in data]
        return data

    def _json(self, data: Mapping[str, Any]) -> None:
        sys.stdout.write(json.dumps(self.scrub(data), ensure_ascii=False, default=self._text) + "\n")
        sys.stdout.flush()

    def _text(self, value: object) -> str:  # json.dumps' fallback for paths and the like
        return self.redact(str(value))

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    def emit(self, data: Mapping[str, Any], human: Callable[[Output], None]) -> None:
        """The command's result: `data` as JSON, or whatever `human` prints."""
        if self.json_mode:
            self._json(data)
        else:
            human(self)

    def line(self, text: str, style: str | None = None) -> None:
        """A line of the human result, on stdout."""
        self.out.print(self.redact(text), style=style)

    def note(self, text: str, style: str | None = "dim") -> None:
        """Narration for humans, on stderr; nothing with --json."""
        if not self.json_mode:
            self.err.print(self.redact(text), style=style)

    def error(self, message: str, code: ExitCode, /, **details: Any) -> None:
        if self.json_mode:
            self._json({"error": {"exit_code": int(code), "kind": code.name.lower(),
                                  "message": message, **details}})
            return
        text = self.redact(f"kling-i2v: error: {message}")
        try:
            self.err.print(text, style="bold red")
        except Exception:  # noqa: BLE001 - rich unusable (a closed stream?): the message still matters
            sys.stderr.write(text + "\n")

    def debug(self, text: str) -> None:
        sys.stderr.write(self.redact(text))
        sys.stderr.flush()


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here; main() ends a closed pipe with 0, as Unix tools do
            raise BrokenPipeError

    # no markup, highlighting or :emoji: codes: server text is shown as it was sent
    return _Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True)


def task_json(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "status": task.status.value,
        "gateway_status": task.gateway_status,
        "progress": task.progress,
        "video_urls": list(task.video_urls),
        "fail_reason": task.fail_reason,
        "external_task_id": task.external_task_id,
    }


def print_task(output: Output, task: Task) -> None:
    style = {"succeeded": "green", "failed": "red"}.get(task.status.value)
    gateway = f" ({task.gateway_status})" if task.gateway_status else ""
    output.line(f"task      {task.task_id}")
    output.line(f"status    {task.status.value}{gateway}", style=style)
    output.line(f"progress  {task.progress}%")
    if task.external_task_id:
        output.line(f"external  {task.external_task_id}")
    if task.fail_reason:
        output.line(f"reason    {task.fail_reason}", style="red")
    for url in task.video_urls:
        output.line(f"video     {url}")


class _Bars:
    """Progress bars on stderr, drawn only when `output.live`; rich is imported then only.
    A display says which columns it shows and adds its bars in `_start`."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._progress: Progress | None = None

    def _columns(self) -> tuple[ProgressColumn, ...]:
        raise NotImplementedError

    def _start(self, progress: Progress) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        if self._output.live:
            from rich.progress import Progress

            self._progress = Progress(*self._columns(), console=self._output.err, transient=True)
            self._progress.start()
            self._start(self._progress)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()


class TaskProgress(_Bars):
    """A progress bar for one task, on stderr; `update` is wait()'s `on_progress`."""

    def __init__(self, output: Output, label: str) -> None:
        super().__init__(output)
        self._label = output.redact(label)
        self._bar: TaskID | None = None

    def _columns(self) -> tuple[ProgressColumn, ...]:
        from rich.progress import (
            BarColumn,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        return (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                TaskProgressColumn(), TimeElapsedColumn())

    def _start(self, progress: Progress) -> None:
        self._bar = progress.add_task(f"{self._label} queued", total=100)

    def update(self, task: Task) -> None:
        if self._progress is not None and self._bar is not None:
            self._progress.update(self._bar, completed=task.progress,
                                  description=f"{self._label} {task.status.value}")


# ============================================================================ batch

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
