"""What every call does, written once for both clients.

Each call is a generator that yields the I/O it needs (`Exchange` one HTTP request and
read its answer, `Sleep`, `Notify` a progress callback) and receives the result, or has
the error thrown into it. KlingClient carries the actions out with blocking calls,
AsyncKlingClient with awaits; neither holds any decision of its own. (This is the
"sans-I/O" style of h11 and httpcore's protocol code; httpcore instead generates its sync
half from the async one, which would need a build step here.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import attrs
import httpx

from . import _http
from ._wire import Deadline
from .errors import DeadlineExceededError, WaitTimeoutError
from .outcomes import classify
from .tasks import Task

if TYPE_CHECKING:
    from ._core import ClientCore, Request, TaskOrId
    from .polling import Waiter

__all__ = ["Blocking", "Exchange", "Flow", "Notify", "Sink", "Sleep"]

T = TypeVar("T")


class Sink(Protocol):
    """Where an answer's body goes: an in-memory answer, or a video file."""

    def begin(self, response: httpx.Response) -> bool:
        """Check the status line and headers; False to skip reading the body."""

    def feed(self, raw: bytes) -> bool:
        """One raw (still encoded) chunk; False once nothing more is wanted."""

    def end(self) -> Any:
        """The result of the exchange, once the body is read (or skipped)."""


@attrs.frozen
class Exchange:
    """Send `request` (without the token when `anonymous`) and pour its answer into `sink`."""

    request: Request
    sink: Sink
    deadline: Deadline
    url: str | httpx.URL | None = None
    """Instead of the request's own URL: a redirect's target."""
    anonymous: bool = False


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Blocking:
    """File work that may wait on the disk (creating a file, fsync, a rename): the async
    client runs `call` in a thread, so an fsync (milliseconds on a real disk) does not
    stall every other call on the event loop; the sync client just calls it. `undo`
    cleans up after what `call` returned when the caller was cancelled meanwhile."""

    call: Callable[[], Any]
    undo: Callable[[Any], object] | None = None


@attrs.frozen
class Notify:
    """What an `on_progress` callback returned: the async client awaits an awaitable."""

    value: object


Flow = Generator[Exchange | Sleep | Notify | Blocking, Any, T]


class Stepper(Generic[T]):
    """Runs a flow one action at a time: `action` is what it wants done next; `send` the
    result (or `throw` the error) to get the next one, until `done` with `result`."""

    def __init__(self, flow: Flow[T]) -> None:
        self._flow = flow
        self.done = False
        self.result: T
        self.action: Exchange | Sleep | Notify | Blocking
        self.send(None)

    def send(self, value: Any) -> None:
        self._advance(lambda: self._flow.send(value))

    def throw(self, error: BaseException) -> None:
        self._advance(lambda: self._flow.throw(error))

    def _advance(self, resume: Callable[[], Exchange | Sleep | Notify | Blocking]) -> None:
        try:
            self.action = resume()
        except StopIteration as stop:
            self.done = True
            self.result = stop.value


MAX_REDIRECTS = 5
"""Video hosts (CDNs) sign URLs with a redirect or two; more than this is a loop."""


def attempts(core: ClientCore, request: Request, deadline: Deadline,
             once: Callable[[], Flow[T]]) -> Flow[T]:
    """Run `once` (one try: an exchange and reading its answer), again while
    `outcomes.classify` says RETRY or PAUSE, the retry policy allows it and the deadline
    leaves time for the wait."""
    attempt = 0
    while True:
        attempt += 1
        try:
            deadline.check(request_sent=False)
            return (yield from once())
        except Exception as error:  # noqa: BLE001 - classify() judges every kind
            delay = core.retry.delay(attempt, error)
            remaining = deadline.remaining()
            if (not classify(request.operation, error,
                             model_listed=request.model_listed).retried_by_client
                    or attempt > core.retry.max_retries
                    or (remaining is not None and delay >= remaining)):
                raise core.final(error, request)  # noqa: B904 - final() sets the cause
            _http.log_retry(request.operation, attempt, core.retry, error, delay)
        yield Sleep(delay)


def _ask(core: ClientCore, request: Request, deadline: Deadline,
         read: Callable[[httpx.Response], T]) -> Flow[T]:
    return read((yield Exchange(request, core.answer_sink(request, deadline), deadline)))


def create(core: ClientCore, request: Request, deadline: Deadline) -> Flow[Task]:
    return (yield from attempts(core, request, deadline, lambda: _ask(
        core, request, deadline, lambda response: core.read_created(response, request))))


def get(core: ClientCore, task: TaskOrId, deadline: Deadline) -> Flow[Task]:
    request = core.query_request(task)
    return (yield from attempts(core, request, deadline,
                                lambda: _ask(core, request, deadline, core.read_query)))


def wait(core: ClientCore, waiter: Waiter, clock: Callable[[], float],
         call_deadline: float | None) -> Flow[Task]:
    while True:
        left = waiter.remaining()
        seconds = left if call_deadline is None else min(call_deadline, left)
        try:
            task = yield from get(core, waiter.task_id, Deadline("query", seconds, clock))
        except DeadlineExceededError:
            if waiter.remaining() > 0:
                raise
            raise WaitTimeoutError(waiter.last, waiter.timeout, waiter.task_id) from None
        reported = waiter.observe(task)
        if reported is not None:
            yield Notify(reported)
        done = waiter.outcome()
        if done is not None:
            return done
        yield Sleep(waiter.next_sleep())


def download(core: ClientCore, task_or_url: TaskOrId, path: str | os.PathLike[str],
             overwrite: bool, deadline: Deadline) -> Flow[Path]:
    if core.needs_lookup(task_or_url):
        task_or_url = yield from get(core, task_or_url, deadline)
    request = core.download_request(task_or_url)
    target = yield Blocking(lambda: core.download_target(path, task_or_url, overwrite),
                            undo=lambda made: made.abandon())
    try:
        yield from attempts(core, request, deadline,
                            lambda: _fetch(core, request, target, deadline))
        finished: Path = yield Blocking(target.finish)
        return finished
    finally:
        target.abandon()


def _fetch(core: ClientCore, request: Request, target: Any, deadline: Deadline) -> Flow[None]:
    """One try at the video, following a few redirects: each hop without the token (the
    video host is not the gateway) and only to http(s) (`ClientCore.redirect`)."""
    url: httpx.URL = request.url
    for hop in range(MAX_REDIRECTS + 1):
        location = yield Exchange(request, target.sink(url, deadline), deadline, url=url,
                                  anonymous=hop > 0)
        if location is None:
            return
        url = core.redirect(url, location)
    raise core.too_many_redirects(url, MAX_REDIRECTS)
