"""The batch engine's machinery: shared state, stopping, sleeping, committing (see
batch.py for what the engine promises, _runner.py for what it does with rows)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import types
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._pacing import DurationGuess, Pause, TaskWindow
from .batchfolder import BatchFolder
from .errors import APIError, APIStatusError, ConfigurationError
from .journal import JournalRow, RowState
from .polling import PollPolicy

if TYPE_CHECKING:
    from .batch import BatchOptions
    from .client import AsyncKlingClient
    from .manifest import ManifestRow
    from .requests import RequestBody

KILL_AT_ENV = "KLING_I2V_TEST_KILL_AT"
KILL_POINTS = ("before-create", "after-create", "after-logged", "after-submitted", "after-download")

Stopped = Literal["finished", "interrupted", "timeout", "error"]
_BUSY = (RowState.SUBMITTING, RowState.SUBMITTED)


class Observer(Protocol):
    def changed(self, row: JournalRow, counts: Mapping[RowState, int]) -> None: ...
    def note(self, message: str) -> None: ...


class Stopping(Exception):
    """The batch is stopping: leave the row as it is."""


class Fatal(Exception):
    """An error that every row would meet: stop the batch."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        super().__init__(str(error))


class KillSwitch:
    """The KLING_I2V_TEST_KILL_AT test hook (see batch.py)."""

    def __init__(self, spec: str) -> None:
        point, _, count = spec.partition(":")
        if point not in KILL_POINTS:
            raise ConfigurationError(f"{KILL_AT_ENV}: unknown point {point!r}; known: {', '.join(KILL_POINTS)}")
        self.point = point
        self.remaining = int(count or "1")

    def reached(self, point: str) -> None:
        if point == self.point:
            self.remaining -= 1
            if self.remaining == 0:
                sigkill = getattr(signal, "SIGKILL", None)
                if sigkill is None:  # pragma: no cover - Windows
                    os._exit(137)
                os.kill(os.getpid(), sigkill)
                time.sleep(60)  # pragma: no cover - the signal is on its way


class Engine:
    """What the creators and followers of one run share."""

    def __init__(self, rows: Sequence[ManifestRow], client: AsyncKlingClient, out_dir: Path,
                 options: BatchOptions, observer: Observer | None) -> None:
        self.rows = {row.key: row for row in rows}
        self.order = [row.key for row in rows]
        self._client = client
        self.out = out_dir
        self._options = options
        self._observer = observer
        self._create_pause = Pause(options.backoff)
        self._query_pause = Pause(options.backoff)
        self.window = TaskWindow(options.max_running, options.concurrency)
        self._durations = DurationGuess()
        self._poll = PollPolicy(initial_interval=options.poll_interval / 10,
                                max_interval=options.poll_interval)
        spec = os.environ.get(KILL_AT_ENV)
        self._kill = KillSwitch(spec) if spec else None
        self._states: dict[str, RowState] = {}
        self.counts: dict[RowState, int] = dict.fromkeys(RowState, 0)
        self._counts_view = types.MappingProxyType(self.counts)
        self._pending: collections.deque[str] = collections.deque()
        self._followers: set[asyncio.Task[None]] = set()
        self._creators: set[asyncio.Task[None]] = set()
        self.stopped: Stopped | None = None
        self.error: BaseException | None = None
        self._signals = 0
        self._stop = asyncio.Event()
        self._slot = asyncio.Event()
        self._poll_slots = asyncio.Semaphore(options.poll_concurrency)
        self._download_slots = asyncio.Semaphore(options.download_concurrency)
        self._folder: BatchFolder | None = None
        self.creates_sent = 0
        self.reached = False
        """Whether anything answered in this run (a batch that reaches nothing stops)."""
        self.created = 0
        self.resumed: dict[RowState, int] = {}
        """The states of this run's rows that an earlier run had journaled, as this one began."""
        self._reserved = 0
        """Creators past the task window's check whose row is not yet `submitting`."""
        self.final_rows: list[JournalRow] = []
        self.fits: dict[str, dict[str, str]] = {}
        """What --fit did to each row's images in this run, by row key and field."""

    def _spawn(self, group: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._guard(work))
        group.add(task)
        task.add_done_callback(group.discard)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Stopping:
            pass
        except Fatal as fatal:
            self._fail(fatal.error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug, or the journal/log is gone: stop cleanly
            self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._halt("error")

    def _halt(self, reason: Stopped) -> None:
        if self.stopped is None:
            self.stopped = reason
        self._stop.set()
        self._slot.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
                continue
            installed.append(sig)
        return installed

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals == 1:
            self._halt("interrupted")
            sending = self.counts[RowState.SUBMITTING]
            more = (f"; waiting for {sending} create(s) in flight to answer (again to abandon them)"
                    if sending else "")
            self._say(f"stopping{more}")
        else:
            self._say("abandoning the creates in flight: their rows become ambiguous")
            for task in list(self._creators):
                task.cancel()

    # ------------------------------------------------------------------ helpers

    async def _clear_to_send(self, pause: Pause) -> None:
        """Return when `pause` is over; raise Stopping if the batch is stopping."""
        while True:
            if self._stop.is_set():
                raise Stopping
            remaining = pause.remaining()
            if remaining <= 0:
                return
            await self._sleep(remaining)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up when the batch starts stopping."""
        if seconds <= 0 or self._stop.is_set():
            return
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    def _commit(self, row: JournalRow) -> JournalRow:
        """Every journal change passes here: the counts follow it in O(1) (issue 12.2)."""
        before = self._states.get(row.key)
        if before is not row.state:
            if before is not None:
                self.counts[before] -= 1
            self.counts[row.state] += 1
            self._states[row.key] = row.state
            if before in _BUSY and row.state not in _BUSY:
                self._slot.set()  # a task finished (or never started): room for a create
        if self._observer is not None:
            self._observer.changed(row, self._counts_view)
        return row

    def _say(self, message: str) -> None:
        if self._observer is not None:
            self._observer.note(message)

    def _fitted_body(self, key: str, fields: Mapping[str, Any]) -> RequestBody:
        """The row's body with its images fitted (kling_i2v.fit) and its motion brushes
        made (kling_i2v.motion); what fitting did is kept in `fits`. Runs in a thread."""
        from .fit import fitted_body

        report: dict[str, str] = {}
        body = fitted_body(fields, self._options.fit, report=report,
                           allow_unknown_model=self._options.allow_unknown_model)
        if report:
            self.fits[key] = report
        return body

    def _hook(self, point: str) -> None:
        if self._kill is not None:
            self._kill.reached(point)

    def _need_folder(self) -> BatchFolder:
        if self._folder is None:  # pragma: no cover - run() sets it first
            raise RuntimeError("the batch is not running")
        return self._folder


def remove_partial_downloads(folder: Path) -> None:
    """Temporary files of downloads a dead run left behind (client.download's `.NAME.*.part`)."""
    if not folder.is_dir():
        return
    for part in folder.rglob(".*.mp4.*.part"):
        try:
            part.unlink()
        except OSError:
            pass


def describe(error: BaseException) -> str:
    text = " ".join((str(error) or type(error).__name__).split())
    if isinstance(error, APIError) and error.external_task_id:
        # the journal keeps the external id in its own column
        text = text.replace(f"; external_task_id={error.external_task_id}", "")
    return text


def status_of(error: BaseException) -> str:
    return f"HTTP {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
