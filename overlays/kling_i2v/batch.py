"""Batch runs: many videos, bounded concurrency, and a journal that survives `kill -9`.

    rows = read_rows("shots.csv")
    async with batch_client(options) as kling:     # no retries of its own, pool sized
        result = await run_batch(rows, kling, "videos/", options)

What each row goes through is in journal.py; the output folder's rules (one run at a
time, a journal that is there or loudly missing, the task log) in batchfolder.py. Here is
who does it:

- `concurrency` creators take pending rows in manifest order. Each writes the create to
  the task log and commits the row as `submitting` (with its external_task_id) before
  sending, and records the task id the moment the create returns, before anything else.
- A create goes out only while the account has room: tasks created but not finished stay
  within `max_running`, or, without it, within the limit the batch finds (_pacing.py).
- Every submitted row then gets a follower that polls it (at most `poll_concurrency`
  queries in flight) and downloads its video (at most `download_concurrency` at once)
  into the output folder, through a temporary file renamed into place when complete.
- A 429 on a create holds back creates only; a 429 on a query pauses queries only: polls
  and downloads go on, since noticing finished tasks is what frees the account's slots.

What is done when a request fails is decided by the package's one classifier,
`kling_i2v.outcomes.classify(operation, error)` (its table cites gateway-facts.md row by
row), the same rule KlingClient follows; the batch gives the client no retries of its own
(`batch_client`) and acts on each outcome itself:

    create
      RETRY, REFUSED  the gateway said, in its own words, that nothing was created (its own
                      5xx, a connection never made): the row goes back to pending and is sent
                      again after a backoff, up to `max_attempts` tries, then fails
      PAUSE           429 (or 503 model_not_found): the row waits. A 429 without Retry-After
                      while tasks run is the account's task limit: the task window is cut to
                      the tasks running. Otherwise creates (only) wait a backoff
      AMBIGUOUS       no answer, a reset, a timeout, a redirect, a page that is not the
                      gateway's: the task may exist. The row is ambiguous, never pending: it
                      is sent again only on request (`resubmit_ambiguous`, which may pay
                      twice), or linked to the task the user found (`adopt`). An answer that
                      is not the gateway's also stops the batch: the next create would meet it
      FAILED          the gateway turned this row down (400 and its kin): the row fails
                      (`failure="gateway"`), nothing was created; `retry_failed` sends it again
      FATAL           401, 403, insufficient balance: every row would meet it; the batch stops
    query
      RETRY, PAUSE    again after a backoff, or after the queries' pause (a 429 on a query
                      pauses queries only)
      FAILED          400 task_not_exist: the row fails; any other FAILED answer leaves the row
                      submitted (its task exists and was paid for) for the next run
      FATAL           the batch stops
    download
      RETRY, FAILED   again after a backoff (after FAILED with the video URL asked for anew:
                      a signed URL may have expired), up to `max_attempts`, then the row
                      stays succeeded for the next run
      FATAL           a full disk, a bug: the batch stops

A row refused before sending (a missing image, a request the spec refuses) is marked
`failure="local"` and checked again on every run: it cost nothing.

Stopping: `SIGINT` or `SIGTERM` (Ctrl-C) stops sending new creates, lets the ones in
flight finish and records their task ids, stops polling and downloading (a partial
download is removed), and returns with `stopped="interrupted"`. A second signal abandons
the creates in flight: their rows are recorded as ambiguous.

Test hook: with the environment variable `KLING_I2V_TEST_KILL_AT=POINT[:N]` the process
SIGKILLs itself the N-th time (default: the first) any row reaches POINT, one of
`before-create` (submitting committed, request not sent), `after-create` (the gateway
accepted, the task id not yet written anywhere), `after-logged` (the task id is in the
task log, not yet in the journal), `after-submitted`, `after-download` (the file is
in place, `downloaded` not yet committed). The crash tests use it to die exactly between
two steps; without the variable it does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from ._http import RetryPolicy
from .errors import ConfigurationError
from .journal import JournalRow, RowState

if TYPE_CHECKING:
    from ._runner import KILL_AT_ENV, KILL_POINTS, Stopped
    from .batchfolder import adopt, rebuild_journal
    from .client import AsyncKlingClient
    from .manifest import ManifestRow

__all__ = ["KILL_AT_ENV", "KILL_POINTS", "BatchObserver", "BatchOptions", "BatchResult", "adopt",
           "batch_client", "rebuild_journal", "run_batch"]


def __getattr__(name: str) -> Any:
    # The batch's machinery (asyncio, the output folder, the task log) loads when a batch
    # runs, not with BatchOptions: every `kling-i2v` command builds the batch parser from
    # its defaults, and `status --json` should not pay for it (issue 12).
    if name in ("KILL_AT_ENV", "KILL_POINTS"):
        from . import _runner

        return getattr(_runner, name)
    if name in ("adopt", "rebuild_journal"):
        from . import batchfolder

        return getattr(batchfolder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@attrs.frozen
class BatchOptions:
    concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    """Create requests in flight at once."""
    poll_concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Status queries in flight at once."""
    download_concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    poll_interval: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    """The longest wait between two queries of one task (they start at a tenth of it)."""
    max_running: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    """Tasks created but not finished at once; None: find the account's limit."""
    timeout: float | None = None
    """Stop waiting after this many seconds; unfinished rows resume on the next run."""
    resubmit_ambiguous: bool = False
    """Create again the rows whose earlier create may or may not have made a task."""
    retry_failed: bool = False
    """Create again the rows that failed (rows never sent are checked again anyway)."""
    max_attempts: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Tries per create (429s aside: those wait for room) and per download."""
    backoff: RetryPolicy = attrs.field(
        factory=lambda: RetryPolicy(initial_delay=1.0, max_delay=60.0, max_retry_after=300.0)
    )
    """Delays after failures and for the pauses after 429s."""
    fit: Literal[False, "pad", "crop"] = False
    """Make each row's local images meet the image rules first (kling_i2v.fit)."""
    allow_unknown_model: bool = False
    """Send a model_name the spec does not list, as `create(allow_unknown_model=True)`
    does (every other rule is still checked); the gateway decides whether it serves it."""

    @property
    def connections(self) -> int:
        """Requests the batch can have in flight at once: the client's pool size."""
        return self.concurrency + self.poll_concurrency + self.download_concurrency


class BatchObserver(Protocol):
    """What a progress display is told. Called on the event loop: return quickly."""

    def changed(self, row: JournalRow, counts: Mapping[RowState, int]) -> None:
        """A row's journal entry was just committed; `counts` is live (read, do not keep)."""

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
    max_running: int | None = None
    """The task window the batch ended with (the account's limit, if it met it)."""
    creates_sent: int = 0
    created: int = 0
    """Tasks this run created (creates the gateway answered with a task id)."""
    resumed: Mapping[RowState, int] = attrs.field(factory=dict)
    """For a run that resumes: how many of its rows an earlier run had journaled, by the
    state they were in when this run began (empty for a first run)."""
    limited: int = 0
    """Creates the gateway answered 429 (too many running, or saturated)."""
    fits: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)
    """What `fit` did to the images of the rows created in this run, by row key, then by
    field ("image", "static_mask", ...): FitResult.summary(), e.g. "converted webp → jpeg,
    quality 95; 0.4 MB". Rows created in an earlier run are not in it."""

    def counts(self) -> dict[RowState, int]:
        counts = dict.fromkeys(RowState, 0)
        for row in self.rows:
            counts[row.state] += 1
        return counts

    def path_of(self, row: JournalRow) -> Path:
        return self.out_dir / row.output

    def _repr_html_(self) -> str:  # Jupyter: counts, and each row with its video or reason
        from ._html import batch_html

        return batch_html(self)

    def ambiguous(self) -> list[JournalRow]:
        """Rows whose task may exist: look for their `external_task_id`, then `adopt`."""
        return [row for row in self.rows if row.state is RowState.AMBIGUOUS]

    def refused(self) -> list[JournalRow]:
        """Rows the gateway turned down (nothing paid): `retry_failed` sends them again."""
        return [row for row in self.rows if row.state is RowState.FAILED and row.failure == "gateway"]

    def not_sent(self) -> list[JournalRow]:
        """Rows refused before sending: fixed input is checked again on the next run."""
        return [row for row in self.rows if row.state is RowState.FAILED and row.failure == "local"]


def batch_client(options: BatchOptions | None = None, token: str | None = None, *,
                 base_url: str | None = None, **kwargs: Any) -> AsyncKlingClient:
    """An AsyncKlingClient set up for run_batch: no retries of its own (the batch decides,
    so that a 429 pauses the right workers) and a pool as large as the batch's requests."""
    from .client import AsyncKlingClient

    options = options or BatchOptions()
    kwargs.setdefault("retry", RetryPolicy(max_retries=0))
    # one connection per request the batch can have in flight: no churn, no waiting (12.4)
    kwargs.setdefault("max_connections", options.connections)
    return AsyncKlingClient(token, base_url=base_url, **kwargs)


async def run_batch(
    rows: Sequence[ManifestRow],
    client: AsyncKlingClient,
    out_dir: str | os.PathLike[str],
    options: BatchOptions | None = None,
    observer: BatchObserver | None = None,
) -> BatchResult:
    """Run (or resume) the batch of `rows` with the journal of `out_dir`.

    Make `client` with `batch_client`: a client that retries by itself is refused
    (ConfigurationError), since the batch decides. Raises JournalError if another run holds the folder,
    if the folder's journal is missing or damaged while its task log or videos show a
    batch ran there, or if the batch ran against another gateway than `client`'s."""
    policy = getattr(getattr(client, "_core", None), "retry", None)
    if isinstance(policy, RetryPolicy) and policy.max_retries > 0:
        # the batch decides every retry with the one classifier, so that a 429 holds back
        # the right workers and a create is never sent twice by two retry loops
        raise ConfigurationError(
            "run_batch retries by itself: give it a client made with batch_client(...) "
            "(or with retry=RetryPolicy(max_retries=0))")
    from ._runner import Runner

    runner = Runner(rows, client, Path(out_dir), options or BatchOptions(), observer)
    folder, recovered, others = await runner.run()
    return BatchResult(rows=runner.final_rows, out_dir=runner.out, journal_path=folder.journal.path,
                       stopped=runner.stopped or "finished", error=runner.error,
                       recovered=recovered, other_rows=others, max_running=runner.window.limit,
                       creates_sent=runner.creates_sent, created=runner.created,
                       resumed=dict(runner.resumed), limited=runner.window.limited,
                       fits=runner.fits)

