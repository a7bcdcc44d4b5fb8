"""The batch engine behind run_batch (see batch.py for what it promises)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ._engine import (
    KILL_AT_ENV,
    KILL_POINTS,
    Engine,
    Fatal,
    Stopped,
    Stopping,
    describe,
    remove_partial_downloads,
    status_of,
)
from .capabilities import model_listed
from .batchfolder import BatchFolder, created_record, open_folder, sending_record
from .errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIResponseError,
    KlingError,
    NotAGatewayError,
    TaskNotFoundError,
)
from .fields import IMAGE_FIELDS
from .journal import Journal, JournalRow, NewRow, RowState
from .motion import BRUSHES_COLUMN
from .outcomes import Outcome, classify
from .requests import build_request_body
from .tasks import TaskStatus

__all__ = ["KILL_AT_ENV", "KILL_POINTS", "Runner", "Stopped"]


class Runner(Engine):
    """Creates, polls and downloads the rows of one run."""

    # ------------------------------------------------------------------ the run

    async def run(self) -> tuple[BatchFolder, int, int]:
        """Returns the (closed) folder, rows recovered from a dead run, and other rows."""
        with open_folder(self.out, self._client.base_url) as folder:
            self._folder = folder
            folder.log.watch(folder.journal.path)
            for note in folder.notes:
                self._say(note)
            recovered, others = self._prepare()
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
            self.final_rows = [r for r in (folder.journal.get(k) for k in self.order) if r is not None]
            return folder, recovered, others

    def _prepare(self) -> tuple[int, int]:
        journal = self._need_folder().journal
        recovered = journal.recover(
            "a run stopped between sending the create and recording its answer: the task "
            "may exist (look for its external_task_id)"
        )
        remove_partial_downloads(self.out)
        known = {row.key: row for row in journal.rows()}
        taken = {row.output for row in known.values()}
        new: list[NewRow] = []
        for key in self.order:
            row = self.rows[key]
            output = row.output
            if key not in known and output in taken:
                stem, dot, suffix = output.rpartition(".")
                output = f"{stem}-{key[:8]}.{suffix}" if dot else f"{output}-{key[:8]}"
            taken.add(output)
            new.append(NewRow(key=key, line=row.line, image=row.image, output=output,
                              fields=row.written))
        journal.add(new)
        others = sum(1 for key in known if key not in self.rows)
        options = self._options
        for key in self.order:
            entry = journal.get(key)
            assert entry is not None
            if entry.state is RowState.AMBIGUOUS and options.resubmit_ambiguous:
                entry = journal.reset(key, (RowState.AMBIGUOUS,))
            elif entry.state is RowState.FAILED and (options.retry_failed or entry.failure == "local"):
                # a row refused here was never sent: it costs nothing to check it again
                entry = journal.reset(key, (RowState.FAILED,))
            elif entry.state is RowState.DOWNLOADED and not (self.out / entry.output).is_file():
                entry = journal.redownload(key)
            self._states[key] = entry.state
            self.counts[entry.state] += 1
            if key in known:
                self.resumed[entry.state] = self.resumed.get(entry.state, 0) + 1
        if recovered:
            self._say(f"{len(recovered)} row(s) were being created when a run stopped: "
                      "now ambiguous")
        return len(recovered), others

    async def _work(self) -> None:
        for key in self.order:
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

    # ------------------------------------------------------------------ creating

    async def _creator(self) -> None:
        while self._pending and not self._stop.is_set():
            await self._wait_for_slot()
            # the slot is this creator's from the check until its row counts as submitting:
            # other creators must not take it while this one awaits the log's fsync
            self._reserved += 1
            held = True

            def release() -> None:
                nonlocal held
                if held:
                    held = False
                    self._reserved -= 1
            try:
                if self._pending:
                    await self._submit(self._pending.popleft(), release)
            finally:
                release()

    def _busy(self) -> int:
        return self.counts[RowState.SUBMITTING] + self.counts[RowState.SUBMITTED]

    async def _wait_for_slot(self) -> None:
        """Until the account's task window admits one more create (see _pacing.TaskWindow)."""
        while not self.window.admits(self._busy() + self._reserved):
            if self._stop.is_set():
                raise Stopping
            self._slot.clear()
            await self._slot.wait()

    async def _submit(self, key: str, release: Callable[[], None]) -> None:
        folder = self._need_folder()
        journal = folder.journal
        entry = journal.get(key)
        assert entry is not None
        external_task_id = entry.external_task_id or f"kling-i2v-{key}-{uuid.uuid4().hex[:12]}"
        fields = {**self.rows[key].fields, "external_task_id": external_task_id}
        unlisted = self._options.allow_unknown_model
        try:
            if self._options.fit or fields.get(BRUSHES_COLUMN):  # kling_i2v.fit, .motion
                body = await asyncio.to_thread(self._fitted_body, key, fields)
            else:
                body = (await asyncio.to_thread(build_request_body, None, fields, allow_unknown_model=unlisted)
                        if _has_local_image(fields)
                        else build_request_body(None, fields, allow_unknown_model=unlisted))
        except (KlingError, OSError, ValueError, TypeError) as exc:
            self._commit(journal.failed(key, f"not sent: {describe(exc)}", "local"))
            return
        failures = 0
        while True:
            await self._clear_to_send(self._create_pause)
            # the log has the create on disk before it can cost anything
            await folder.log.write(sending_record(entry, external_task_id, self.rows[key].written))
            self._commit(journal.submitting(key, external_task_id))
            release()
            self._hook("before-create")
            try:
                self.creates_sent += 1
                task = await self._client.create(body, allow_unknown_model=unlisted)
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
            self.reached = True
            record = created_record(key, external_task_id, task.task_id)
            try:
                await folder.log.write(record)
            except asyncio.CancelledError:
                folder.log.write_now([record])  # a second Ctrl-C: the task id is kept anyway
                self._commit(journal.submitted(key, task.task_id))
                raise
            self._hook("after-logged")
            self._commit(journal.submitted(key, task.task_id))  # before anything else
            self._hook("after-submitted")
            self.created += 1
            self._create_pause.clear()
            self.window.created(self._busy())
            self._slot.set()
            if not self._stop.is_set():
                self._spawn(self._followers, self._follow(key, resumed=False))
            return

    def _create_failed(self, key: str, error: Exception, failures: int) -> tuple[int, float | None]:
        """Record a failed create, as the one classifier (outcomes.classify) reads the error;
        the failure count and seconds until the next try, or None."""
        journal = self._need_folder().journal
        reason = describe(error)
        self.reached = self.reached or not _unreached(error)
        outcome = classify("create", error,
                           model_listed=model_listed(self.rows[key].fields.get("model_name")))
        if outcome is Outcome.AMBIGUOUS:
            self._commit(journal.ambiguous(key, reason))
            if _no_gateway_at_all(error):
                raise Fatal(error)
            return failures, None
        if outcome is Outcome.PAUSE:
            self._commit(journal.refused(key, reason))
            self._pending.appendleft(key)
            if _task_limit(error) and self.window.refused(self._busy()):
                self._say(f"the gateway said {status_of(error)} with {self._busy()} task(s) "
                          f"running: keeping to {self.window.limit} at once")
            else:
                delay = self._create_pause.strike(error)
                self._say(f"the gateway said {status_of(error)}: creates wait {delay:.1f}s")
            return failures, None
        if outcome in (Outcome.RETRY, Outcome.REFUSED):  # nothing was created: again, later
            self._commit(journal.refused(key, reason))
            failures += 1
            if failures >= self._options.max_attempts and not self.reached and _unreached(error):
                # nothing has answered in this run: every row would meet the same, and none
                # was seen by the gateway; the rows stay pending for a run that reaches it
                raise Fatal(error)
            if failures >= self._options.max_attempts:
                self._commit(journal.failed(key, f"gave up after {failures} tries: {reason}",
                                            "gateway"))
                return failures, None
            return failures, self._options.backoff.delay(failures, error)
        if outcome is Outcome.FATAL:
            self._commit(journal.refused(key, reason))
            raise Fatal(error)
        # FAILED: the gateway's verdict on this row (400 and its kin); nothing was created
        self._commit(journal.failed(key, reason, "gateway"))
        return failures, None

    # ------------------------------------------------------------------ following

    async def _follow(self, key: str, *, resumed: bool) -> None:
        journal = self._need_folder().journal
        entry = journal.get(key)
        assert entry is not None and entry.task_id is not None
        task_id = entry.task_id
        born = time.monotonic()
        intervals = self._poll.intervals()
        if entry.state is RowState.SUBMITTED:
            if not resumed:
                await self._sleep(self._next_poll(born, next(intervals)))
            errors = 0
            while True:
                await self._clear_to_send(self._query_pause)
                failure: BaseException | None = None
                async with self._poll_slots:
                    await self._clear_to_send(self._query_pause)
                    try:
                        task = await self._client.get(task_id)
                    except Exception as exc:  # noqa: BLE001 - sorted out below
                        failure = exc
                self.reached = self.reached or not _unreached(failure)
                if failure is not None:
                    outcome = classify("query", failure)
                    if outcome is Outcome.FATAL:
                        raise Fatal(failure)
                    if outcome is Outcome.FAILED and isinstance(failure, TaskNotFoundError) \
                            and _adopted(journal, key, task_id):
                        # a mistyped --adopt / adopt(): the row's own task may still exist
                        self._commit(journal.unadopt(
                            key, f"the adopted task {task_id} is not known to the gateway: check "
                                 f"the id; {describe(failure)}"))
                        return
                    if outcome is Outcome.FAILED and isinstance(failure, TaskNotFoundError):
                        self._commit(journal.failed(
                            key, f"the gateway does not know task {task_id}: {describe(failure)}",
                            "task"))
                        return
                    if outcome is Outcome.PAUSE:
                        delay = self._query_pause.strike(failure)
                        self._say(f"the gateway said {status_of(failure)}: queries wait {delay:.1f}s")
                        continue
                    # the task exists and was paid for: a query that fails otherwise never
                    # fails the row; after max_attempts it waits for the next run
                    errors += 1
                    if outcome is not Outcome.RETRY and errors >= self._options.max_attempts:
                        self._commit(journal.note(key, f"query failed {errors} times: {describe(failure)}"))
                        return
                    await self._sleep(self._options.backoff.delay(min(errors, 8), failure))
                    continue
                errors = 0
                self._query_pause.clear()
                if task.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED) and not resumed:
                    self._durations.finished(time.monotonic() - born)
                if task.status is TaskStatus.SUCCEEDED:
                    if task.video_url is None:
                        self._commit(journal.failed(key, "the task succeeded but has no video URL", "task"))
                        return
                    self._commit(journal.succeeded(key, task.video_url))
                    break
                if task.status is TaskStatus.FAILED:
                    self._commit(journal.failed(key, task.fail_reason or "the task failed (no reason given)",
                                                "task"))
                    return
                await self._sleep(self._next_poll(born, next(intervals)))
        await self._fetch(key)

    def _next_poll(self, born: float, scheduled: float) -> float:
        return self._durations.next_poll(time.monotonic() - born, scheduled, self._poll.initial_interval)

    async def _fetch(self, key: str) -> None:
        journal = self._need_folder().journal
        entry = journal.get(key)
        assert entry is not None and entry.video_url is not None
        target = self.out / entry.output
        failures = 0
        # a video is renamed into place only when complete: if it is there, it is whole
        while not target.is_file():
            if self._stop.is_set():
                raise Stopping
            error: BaseException | None = None
            async with self._download_slots:
                try:
                    await self._client.download(entry.video_url, target)
                except FileExistsError:
                    pass  # the whole video is there (see above)
                except Exception as exc:  # noqa: BLE001 - sorted out below
                    error = exc
            if error is None:
                continue
            outcome = classify("download", error)
            if outcome is Outcome.FATAL:  # a full disk, a bug: every download would meet it
                raise Fatal(error)
            failures += 1
            if failures >= self._options.max_attempts:
                self._commit(journal.note(key, f"download failed {failures} times: {describe(error)}"))
                return
            if outcome is not Outcome.RETRY and entry.task_id:
                entry = await self._refresh_url(key, entry)  # a signed URL may have expired
            await self._sleep(self._options.backoff.delay(failures, error))
        self._hook("after-download")
        self._commit(journal.downloaded(key))

    async def _refresh_url(self, key: str, entry: JournalRow) -> JournalRow:
        """The video URL may have expired: ask the gateway for the task again."""
        assert entry.task_id is not None
        try:
            await self._clear_to_send(self._query_pause)
            task = await self._client.get(entry.task_id)
        except KlingError:
            return entry
        if task.video_url and task.video_url != entry.video_url:
            return self._commit(self._need_folder().journal.succeeded(key, task.video_url))
        return entry

def _adopted(journal: Journal, key: str, task_id: str) -> bool:
    """Whether the row's task id is one a user linked (`adopt`), not the gateway's answer."""
    attempts = journal.attempts(key)
    return bool(attempts) and attempts[-1].outcome == "adopted" and attempts[-1].task_id == task_id


def _has_local_image(fields: Mapping[str, Any]) -> bool:
    """Whether building the body reads a file (then it goes off the event loop)."""
    masks = fields.get("dynamic_masks")
    values = [fields.get(name) for name in IMAGE_FIELDS]  # every x-image field of the spec
    values += [m.get("mask") for m in masks if isinstance(m, Mapping)] if isinstance(masks, list) else []
    return any(v is not None and not (isinstance(v, str) and "://" in v) for v in values)


def _task_limit(error: BaseException) -> bool:
    """A 429 that is Kling's, passed on by the gateway (`fail_to_fetch_task` carries Kling's
    status and body: gateway-facts.md, Errors): Kling's 1302-1304 are rate and concurrency
    limits, 1303 the account's running tasks. The gateway's own 429s (upstream group
    saturated, the per-token gate) and any 429 with Retry-After are limits in time."""
    return (getattr(error, "status_code", None) == 429
            and getattr(error, "code", None) == "fail_to_fetch_task"
            and getattr(error, "retry_after", None) is None)


def _unreached(error: BaseException | None) -> bool:
    """A connection that failed before the request went out (refused, DNS, TLS): nothing
    answered, and outcomes.classify's never-sent rule says nothing was created."""
    return isinstance(error, APIConnectionError) and not error.request_sent


def _no_gateway_at_all(error: BaseException) -> bool:
    """A page where the gateway's JSON was due (a wrong base URL: gateway-facts.md, Routes;
    a login wall), a redirect, or a bug: the next create would meet the same, and may pay
    for it, so the batch stops. A proxy's 5xx page or a reset is passing: only the row is
    ambiguous."""
    if isinstance(error, AmbiguousCreateError) and error.__cause__ is not None:
        error = error.__cause__  # the client's wrapper: what it was is in the cause
    status = getattr(error, "status_code", 0) or 0
    return (isinstance(error, NotAGatewayError) or not isinstance(error, KlingError)
            or (isinstance(error, APIResponseError) and 300 <= status < 400))
