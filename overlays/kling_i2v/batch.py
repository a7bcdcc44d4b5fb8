"""Batch runs: many videos, bounded concurrency, and a journal that survives `kill -9`.

    rows = read_rows("shots.csv")
    async with AsyncKlingClient(retry=RetryPolicy(max_retries=0)) as kling:
        result = await run_batch(rows, kling, "videos/")

What each row goes through is in journal.py. Here is who does it:

- `concurrency` creators take pending rows in manifest order. Each commits the row as
  `submitting` (with its external_task_id) before sending, and commits the task id the
  moment the create returns, before anything else.
- Every submitted row then gets a follower that polls it (at most `poll_concurrency`
  queries in flight) and downloads its video (at most `download_concurrency` at once)
  into the output folder, through a temporary file renamed into place when complete.
- A 429 (or the gateway's own 503) from any request pauses *every* request to the
  gateway: one shared pause, honouring Retry-After, growing while 429s keep coming.
  Downloads go to the video host, not the gateway, and are not paused.

What is retried, and what is not, when a create fails:

    429; the gateway's own 503                 sent again after the shared pause
    another 5xx in a gateway JSON error shape  sent again, after a backoff (up to max_attempts):
                                               the gateway answered, and it records (and bills) a
                                               task only when it answers 200
    connection refused (nothing was sent)      sent again, after a backoff
    no answer, reset, timeout, a 5xx page that the row becomes `ambiguous`: the task may exist.
      is not the gateway's (a proxy's)         It is never sent again unless asked
                                               (`resubmit_ambiguous`), since that may pay twice
    400 and other 4xx                          the row fails with the gateway's reason
    401, 403, 404                              the whole batch stops: every row would fail

A query or download that fails is simply tried again later: the task exists either way.
Rows that failed stay failed on a re-run unless `retry_failed` is set.

Stopping: `SIGINT` or `SIGTERM` (Ctrl-C) stops sending new creates, lets the ones in
flight finish and records their task ids, stops polling and downloading (a partial
download is removed), and returns with `stopped="interrupted"`. A second signal abandons
the creates in flight: their rows are recorded as ambiguous.

Test hook: with the environment variable `KLING_I2V_TEST_KILL_AT=POINT[:N]` the process
SIGKILLs itself the N-th time (default: the first) any row reaches POINT, one of
`before-create` (submitting committed, request not sent), `after-create` (the gateway
accepted, the task id not yet committed), `after-submitted`, `after-download` (the file is
in place, `downloaded` not yet committed). The crash tests use it to die exactly between
two steps; without the variable it does nothing.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from ._http import RetryPolicy
from .errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TaskNotFoundError,
)
from .journal import Journal, JournalRow, NewRow, RowState
from .polling import PollPolicy
from .requests import build_request_body
from .tasks import TaskStatus

if TYPE_CHECKING:
    from .client import AsyncKlingClient
    from .manifest import ManifestRow

__all__ = ["KILL_AT_ENV", "BatchObserver", "BatchOptions", "BatchResult", "run_batch"]

KILL_AT_ENV = "KLING_I2V_TEST_KILL_AT"
KILL_POINTS = ("before-create", "after-create", "after-submitted", "after-download")

Stopped = Literal["finished", "interrupted", "timeout", "error"]


@attrs.frozen
class BatchOptions:
    concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    """Create requests in flight at once."""
    poll_concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Status queries in flight at once."""
    download_concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    poll_interval: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    """The longest wait between two queries of one task (they start at a second or less)."""
    timeout: float | None = None
    """Stop waiting after this many seconds; unfinished rows resume on the next run."""
    resubmit_ambiguous: bool = False
    """Create again the rows whose earlier create may or may not have made a task."""
    retry_failed: bool = False
    """Create again the rows that failed."""
    max_attempts: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Tries per create (429s aside: those wait as long as the gateway asks) and per download."""
    backoff: RetryPolicy = attrs.field(
        factory=lambda: RetryPolicy(initial_delay=1.0, max_delay=60.0, max_retry_after=300.0)
    )
    """Delays after failures and for the shared pause on 429."""


class BatchObserver(Protocol):
    """What a progress display is told. Called on the event loop: return quickly."""

    def changed(self, row: JournalRow, counts: Mapping[RowState, int]) -> None:
        """A row's journal entry was just committed."""

    def note(self, message: str) -> None:
        """Something worth a line: a pause for 429, stopping, a resumed row."""


@attrs.frozen
class BatchResult:
    rows: list[JournalRow]
    """This manifest's rows as the journal has them at the end, in manifest order."""
    out_dir: Path
    journal_path: Path
    stopped: Stopped
    error: BaseException | None = None
    """What stopped the batch when `stopped == "error"`."""
    recovered: int = 0
    """Rows found in `submitting` (a run died mid-create) and made ambiguous."""
    other_rows: int = 0
    """Rows in the journal that this manifest does not have (changed or from another run)."""

    def counts(self) -> dict[RowState, int]:
        counts = dict.fromkeys(RowState, 0)
        for row in self.rows:
            counts[row.state] += 1
        return counts

    def path_of(self, row: JournalRow) -> Path:
        return self.out_dir / row.output


async def run_batch(
    rows: Sequence[ManifestRow],
    client: AsyncKlingClient,
    out_dir: str | os.PathLike[str],
    options: BatchOptions | None = None,
    observer: BatchObserver | None = None,
) -> BatchResult:
    """Run (or resume) the batch of `rows` with the journal of `out_dir`.

    Give `client` no retries of its own (`RetryPolicy(max_retries=0)`): the batch retries,
    so that a 429 pauses every worker at once. Raises JournalError if another run holds the
    journal."""
    runner = _Runner(rows, client, Path(out_dir), options or BatchOptions(), observer)
    return await runner.run()


# ============================================================================ internals


class _Stopping(Exception):
    """The batch is stopping: leave the row as it is."""


class _Fatal(Exception):
    """An error that every row would meet: stop the batch."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        super().__init__(str(error))


class _Pacer:
    """One pause shared by every request to the gateway, set by a 429 or the gateway's 503."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._until = 0.0
        self._strikes = 0

    def remaining(self) -> float:
        return self._until - time.monotonic()

    def strike(self, error: BaseException) -> float:
        self._strikes += 1
        delay = self._policy.delay(min(self._strikes, 16), error)
        self._until = max(self._until, time.monotonic() + delay)
        return delay

    def clear(self) -> None:
        self._strikes = 0


class _KillSwitch:
    """The KLING_I2V_TEST_KILL_AT test hook (see the module docstring)."""

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


def _refused_by_gateway(error: BaseException) -> bool:
    """A create the gateway answered with its own error: it made no task."""
    return (
        isinstance(error, APIStatusError)
        and error.status_code >= 500
        and error.shape in ("gateway", "task")
    )


def _pauses_everyone(error: BaseException) -> bool:
    return isinstance(error, RateLimitError) or (
        isinstance(error, APIStatusError) and error.status_code == 503 and error.shape == "gateway"
    )


def _fatal(error: BaseException) -> bool:
    return isinstance(error, AuthenticationError | PermissionDeniedError | NotFoundError
                      | ConfigurationError)


def _describe(error: BaseException) -> str:
    text = " ".join((str(error) or type(error).__name__).split())
    if isinstance(error, APIError) and error.external_task_id:
        # the journal keeps the external id in its own column
        text = text.replace(f"; external_task_id={error.external_task_id}", "")
    return text


class _Runner:
    def __init__(self, rows: Sequence[ManifestRow], client: AsyncKlingClient, out_dir: Path,
                 options: BatchOptions, observer: BatchObserver | None) -> None:
        self._rows = {row.key: row for row in rows}
        self._order = [row.key for row in rows]
        self._client = client
        self._out = out_dir
        self._options = options
        self._observer = observer
        self._pacer = _Pacer(options.backoff)
        self._poll = PollPolicy(initial_interval=min(1.0, options.poll_interval),
                                max_interval=options.poll_interval)
        spec = os.environ.get(KILL_AT_ENV)
        self._kill = _KillSwitch(spec) if spec else None
        self._states: dict[str, RowState] = {}
        self._pending: collections.deque[str] = collections.deque()
        self._followers: set[asyncio.Task[None]] = set()
        self._creators: set[asyncio.Task[None]] = set()
        self._stopped: Stopped | None = None
        self._error: BaseException | None = None
        self._signals = 0
        self._stop = asyncio.Event()
        self._poll_slots = asyncio.Semaphore(options.poll_concurrency)
        self._download_slots = asyncio.Semaphore(options.download_concurrency)
        self._journal: Journal | None = None

    # ------------------------------------------------------------------ the run

    async def run(self) -> BatchResult:
        with Journal.in_folder(self._out) as journal:
            self._journal = journal
            recovered, others = self._prepare(journal)
            loop = asyncio.get_running_loop()
            installed = self._install_signals(loop)
            timer = (loop.call_later(self._options.timeout, self._halt, "timeout")
                     if self._options.timeout is not None else None)
            try:
                await self._work()
            finally:
                if timer is not None:
                    timer.cancel()
                for sig in installed:
                    loop.remove_signal_handler(sig)
            rows = [r for r in (journal.get(k) for k in self._order) if r is not None]
            return BatchResult(rows=rows, out_dir=self._out, journal_path=journal.path,
                               stopped=self._stopped or "finished", error=self._error,
                               recovered=recovered, other_rows=others)

    def _prepare(self, journal: Journal) -> tuple[int, int]:
        recovered = journal.recover(
            "a run stopped between sending the create and recording its answer: the task "
            "may exist (look for its external_task_id)"
        )
        _remove_partial_downloads(self._out)
        known = {row.key: row for row in journal.rows()}
        taken = {row.output for row in known.values()}
        new: list[NewRow] = []
        for key in self._order:
            row = self._rows[key]
            output = row.output
            if key not in known and output in taken:
                stem, dot, suffix = output.rpartition(".")
                output = f"{stem}-{key[:8]}.{suffix}" if dot else f"{output}-{key[:8]}"
            taken.add(output)
            new.append(NewRow(key=key, line=row.line, image=row.image, output=output,
                              fields=row.written))
        journal.add(new)
        others = sum(1 for key in known if key not in self._rows)
        for key in self._order:
            entry = journal.get(key)
            assert entry is not None
            if entry.state is RowState.AMBIGUOUS and self._options.resubmit_ambiguous:
                entry = journal.reset(key, (RowState.AMBIGUOUS,))
            elif entry.state is RowState.FAILED and self._options.retry_failed:
                entry = journal.reset(key, (RowState.FAILED,))
            elif entry.state is RowState.DOWNLOADED and not (self._out / entry.output).is_file():
                entry = journal.redownload(key)
            self._states[key] = entry.state
        if recovered:
            self._say(f"{len(recovered)} row(s) were being created when a run stopped: "
                      "now ambiguous")
        return len(recovered), others

    async def _work(self) -> None:
        for key in self._order:
            state = self._states[key]
            if state is RowState.PENDING:
                self._pending.append(key)
            elif state in (RowState.SUBMITTED, RowState.SUCCEEDED):
                self._spawn(self._followers, self._follow(key, resumed=True))
        for _ in range(min(self._options.concurrency, len(self._pending))):
            self._spawn(self._creators, self._creator())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while (self._creators or self._followers) and not self._stop.is_set():
                await asyncio.wait({*self._creators, *self._followers, stop},
                                   return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                # creators finish the create they are sending (or are cancelled by a
                # second signal); nothing a follower does needs finishing
                for task in list(self._followers):
                    task.cancel()
                await asyncio.gather(*self._creators, *self._followers, return_exceptions=True)
        finally:
            stop.cancel()
            for task in [*self._creators, *self._followers]:
                task.cancel()
                await asyncio.gather(*self._creators, *self._followers, return_exceptions=True)

    def _spawn(self, group: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._guard(work))
        group.add(task)
        task.add_done_callback(group.discard)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except _Stopping:
            pass
        except _Fatal as fatal:
            if self._error is None:
                self._error = fatal.error
            self._halt("error")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: stop cleanly, journal intact, and report it
            if self._error is None:
                self._error = exc
            self._halt("error")

    def _halt(self, reason: Stopped) -> None:
        if self._stopped is None:
            self._stopped = reason
        self._stop.set()

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
            sending = sum(1 for s in self._states.values() if s is RowState.SUBMITTING)
            more = (f"; waiting for {sending} create(s) in flight to answer (again to abandon them)"
                    if sending else "")
            self._say(f"stopping{more}")
        else:
            self._say("abandoning the creates in flight: their rows become ambiguous")
            for task in list(self._creators):
                task.cancel()

    # ------------------------------------------------------------------ creating

    async def _creator(self) -> None:
        while self._pending and not self._stop.is_set():
            await self._submit(self._pending.popleft())

    async def _submit(self, key: str) -> None:
        journal = self._need_journal()
        entry = journal.get(key)
        assert entry is not None
        external_task_id = entry.external_task_id or f"kling-i2v-{key}-{uuid.uuid4().hex[:12]}"
        fields = {**self._rows[key].fields, "external_task_id": external_task_id}
        try:
            # reads and encodes the images: off the event loop
            body = await asyncio.to_thread(build_request_body, None, fields)
        except (KlingError, OSError, ValueError, TypeError) as exc:
            self._commit(journal.failed(key, f"not sent: {_describe(exc)}"))
            return
        failures = 0
        while True:
            await self._clear_to_send()
            self._commit(journal.submitting(key, external_task_id))
            self._hook("before-create")
            try:
                task = await self._client.create(body)
            except asyncio.CancelledError:
                self._commit(journal.ambiguous(
                    key, "abandoned while the create was in flight: the task may exist"))
                raise
            except Exception as exc:  # noqa: BLE001 - sorted out by _create_failed
                failures, retry_in = self._create_failed(key, exc, failures)
                if retry_in is None:
                    return
                await self._sleep(retry_in)
                continue
            self._hook("after-create")
            self._commit(journal.submitted(key, task.task_id))  # before anything else
            self._hook("after-submitted")
            self._pacer.clear()
            if not self._stop.is_set():
                self._spawn(self._followers, self._follow(key, resumed=False))
            return

    def _create_failed(self, key: str, error: Exception, failures: int) -> tuple[int, float | None]:
        """Record a failed create; the failure count and seconds until the next try, or None."""
        journal = self._need_journal()
        reason = _describe(error)
        if isinstance(error, AmbiguousCreateError) or (
            isinstance(error, APIStatusError) and error.status_code >= 500
            and not _refused_by_gateway(error)
        ):
            self._commit(journal.ambiguous(key, reason))
            return failures, None
        if _pauses_everyone(error):
            self._commit(journal.refused(key, reason))
            delay = self._pacer.strike(error)
            self._say(f"the gateway said {_status(error)}: every request waits {delay:.1f}s")
            return failures, 0.0
        if _refused_by_gateway(error) or (
            isinstance(error, APIConnectionError) and not error.request_sent
        ):
            self._commit(journal.refused(key, reason))
            failures += 1
            if failures >= self._options.max_attempts:
                self._commit(journal.failed(key, f"gave up after {failures} tries: {reason}"))
                return failures, None
            return failures, self._options.backoff.delay(failures, error)
        if _fatal(error) or isinstance(error, APIResponseError):
            self._commit(journal.refused(key, reason))
            raise _Fatal(error)
        if isinstance(error, KlingError):  # 400 and other 4xx: the gateway's verdict on this row
            self._commit(journal.failed(key, reason))
            return failures, None
        # not ours (a bug?): the request may have gone out
        self._commit(journal.ambiguous(key, f"unexpected error during create: {reason}"))
        raise error

    # ------------------------------------------------------------------ following

    async def _follow(self, key: str, *, resumed: bool) -> None:
        journal = self._need_journal()
        entry = journal.get(key)
        assert entry is not None and entry.task_id is not None
        task_id = entry.task_id
        intervals = self._poll.intervals()
        if entry.state is RowState.SUBMITTED:
            if not resumed:
                await self._sleep(next(intervals))
            errors = 0
            while True:
                await self._clear_to_send()
                failure: BaseException | None = None
                async with self._poll_slots:
                    await self._clear_to_send()
                    try:
                        task = await self._client.get(task_id)
                    except TaskNotFoundError as exc:
                        self._commit(journal.failed(key, f"the gateway does not know task {task_id}: "
                                                         f"{_describe(exc)}"))
                        return
                    except APIError as exc:
                        if _fatal(exc):
                            raise _Fatal(exc) from exc
                        failure = exc
                if failure is not None:
                    if _pauses_everyone(failure):
                        delay = self._pacer.strike(failure)
                        self._say(f"the gateway said {_status(failure)}: every request waits {delay:.1f}s")
                    else:
                        errors += 1
                        await self._sleep(self._options.backoff.delay(min(errors, 8), failure))
                    continue
                errors = 0
                self._pacer.clear()
                if task.status is TaskStatus.SUCCEEDED:
                    if task.video_url is None:
                        self._commit(journal.failed(key, "the task succeeded but has no video URL"))
                        return
                    self._commit(journal.succeeded(key, task.video_url))
                    break
                if task.status is TaskStatus.FAILED:
                    self._commit(journal.failed(key, task.fail_reason or "the task failed (no reason given)"))
                    return
                await self._sleep(next(intervals))
        await self._fetch(key)

    async def _fetch(self, key: str) -> None:
        journal = self._need_journal()
        entry = journal.get(key)
        assert entry is not None and entry.video_url is not None
        target = self._out / entry.output
        failures = 0
        # a video is renamed into place only when complete: if it is there, it is whole
        while not target.is_file():
            if self._stop.is_set():
                raise _Stopping
            error: BaseException | None = None
            async with self._download_slots:
                try:
                    await self._client.download(entry.video_url, target)
                except FileExistsError:
                    pass
                except (APIError, OSError) as exc:
                    error = exc
            if error is None:
                continue
            failures += 1
            if failures >= self._options.max_attempts:
                self._commit(journal.note(key, f"download failed {failures} times: {_describe(error)}"))
                return
            if isinstance(error, APIStatusError) and 400 <= error.status_code < 500 and entry.task_id:
                entry = await self._refresh_url(key, entry)
            await self._sleep(self._options.backoff.delay(failures, error))
        self._hook("after-download")
        self._commit(journal.downloaded(key))

    async def _refresh_url(self, key: str, entry: JournalRow) -> JournalRow:
        """The video URL may have expired: ask the gateway for the task again."""
        assert entry.task_id is not None
        try:
            await self._clear_to_send()
            task = await self._client.get(entry.task_id)
        except APIError:
            return entry
        if task.video_url and task.video_url != entry.video_url:
            return self._commit(self._need_journal().succeeded(key, task.video_url))
        return entry

    # ------------------------------------------------------------------ helpers

    async def _clear_to_send(self) -> None:
        """Return when the shared pause is over; raise _Stopping if the batch is stopping."""
        while True:
            if self._stop.is_set():
                raise _Stopping
            remaining = self._pacer.remaining()
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
        self._states[row.key] = row.state
        if self._observer is not None:
            counts = dict.fromkeys(RowState, 0)
            for state in self._states.values():
                counts[state] += 1
            self._observer.changed(row, counts)
        return row

    def _say(self, message: str) -> None:
        if self._observer is not None:
            self._observer.note(message)

    def _hook(self, point: str) -> None:
        if self._kill is not None:
            self._kill.reached(point)

    def _need_journal(self) -> Journal:
        if self._journal is None:  # pragma: no cover - run() sets it first
            raise RuntimeError("the batch is not running")
        return self._journal


def _status(error: BaseException) -> str:
    return f"HTTP {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__


def _remove_partial_downloads(folder: Path) -> None:
    """Temporary files of downloads a dead run left behind (client.download's `.NAME.*.part`)."""
    if not folder.is_dir():
        return
    for part in folder.rglob(".*.mp4.*.part"):
        try:
            part.unlink()
        except OSError:
            pass

