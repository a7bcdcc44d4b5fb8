"""What `kling-i2v` prints: one JSON document with --json, readable text otherwise.

stdout carries the result; stderr carries progress bars, notes and errors (with --json,
errors are the JSON document on stdout, so scripts read one place). rich is imported only
when something is printed for humans, so --json runs and --help do not pay for it. Every
line goes through `redact`, which blanks the API token should it ever show up. What
`batch` prints is in `_batch_output` (it needs the journal, which no other command loads).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..tasks import Task
from ._exit import ExitCode

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, TaskID

__all__ = ["Output", "TaskProgress", "print_task", "task_json"]

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
