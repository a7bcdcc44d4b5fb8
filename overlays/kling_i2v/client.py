"""KlingClient and AsyncKlingClient: one pooled connection, validation before sending,
retries that never pay twice, bounded answers, deadlines, and wait / download helpers.

What each call does is written once, in `_flows` (generators that yield the I/O they
need); `_core.ClientCore` holds configuration and reads answers. The two classes here
only carry out the I/O: blocking on httpx.Client, awaiting on httpx.AsyncClient.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Unpack

import httpx

from . import _flows, _send, _wire
from ._core import DEFAULT_BASE_URL, DEFAULT_MAX_CONNECTIONS, ClientCore, Deadlines, TaskOrId
from ._core import ProgressCallback as ProgressCallback
from ._fields_help import document_fields
from ._flows import Blocking, Exchange, Flow, Sleep
from ._http import RetryPolicy
from .errors import ConfigurationError
from .polling import Clock, PollPolicy, SystemAsyncClock, SystemClock
from .tasks import Task

if TYPE_CHECKING:
    from kling_i2v_api.models import ImageToVideoRequest

    from .requests import CreateFields, RequestBody
    from .fit import FitMode

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_WAIT_TIMEOUT", "AsyncKlingClient", "Deadlines", "KlingClient"]

DEFAULT_WAIT_TIMEOUT = 1800.0
"""wait()'s default: Kling pro renders of 10 s and more can take well over ten minutes."""

T = TypeVar("T")


H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class _ClientBase(Generic[H]):
    """Construction and what both clients share: one constructor (its signature is the
    same for both, with the httpx client type as the parameter), the core, the base URL."""

    _core: ClientCore
    _http: H

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        deadlines: Deadlines | float | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        poll: PollPolicy | None = None,
        validate: bool = True,
        max_connections: int | None = None,
        max_response_bytes: int | None = None,
        max_video_bytes: int | None = None,
        http_client: H | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`token` defaults to $ANYFAST_API_KEY, `base_url` to $ANYFAST_BASE_URL or
        https://www.anyfast.ai. `timeout` bounds each network wait (httpx's timeouts);
        `deadlines` bounds each whole call, retries included (a number for every call, or
        `Deadlines(create=, query=, download=)`; a call's own `timeout=` wins).
        `max_connections` is the pool's size: set it to how many calls run at once (e.g.
        the size of an asyncio.Semaphore around them). `max_response_bytes` caps an API
        answer (4 MiB), `max_video_bytes` a video (2 GiB). `validate=False` skips the
        client-side checks against openapi.yaml. `http_client` replaces the pooled httpx
        client (an httpx.Client for KlingClient, an httpx.AsyncClient for
        AsyncKlingClient; its own settings, TLS and pool included, are then used as
        given, and a trickle of headers is bounded only by its timeouts; the client does
        not close it)."""
        self._core = ClientCore(token, base_url, retry=retry, max_retries=max_retries, poll=poll,
                                validate=validate, deadlines=deadlines,
                                max_response_bytes=max_response_bytes,
                                max_video_bytes=max_video_bytes)
        size = DEFAULT_MAX_CONNECTIONS if max_connections is None else max_connections
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"max_connections must be a whole number of at least 1, got {size!r}")
        # keep-alive as large as the pool: at the pool's size, no connection is closed
        # only to be opened again (issue 12: 4,000-7,000 connections at 256 concurrent
        # calls with httpx's 20 keep-alive connections)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._owns_http = http_client is None
        self._http = http_client or self._new_http(self._core.http_options(timeout), limits)
        self._http.auth = self._core.auth
        # our own pool: requests go beneath Client.send (_send.py); a client the user gave
        # keeps every layer of its own (hooks, auth, cookies)
        self._direct = (_send.Direct(self._http, self._core.auth)
                        if self._owns_http and _send.Direct.usable(self._http) else None)
        self._clock: Clock = clock or self._default_clock()

    def _new_http(self, options: dict[str, Any], limits: httpx.Limits) -> H:
        raise NotImplementedError

    @staticmethod
    def _default_clock() -> Clock:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._core.base_url)!r})"

    @property
    def base_url(self) -> str:
        return str(self._core.base_url)

    def _exchange_request(self, http: httpx.Client | httpx.AsyncClient, action: Exchange) -> httpx.Request:
        if http.is_closed:  # before anything is sent: nothing to be unsure about
            raise ConfigurationError("the client is closed: make a new one (or call it inside "
                                     "its `with` block)")
        kwargs = action.request.kwargs
        if isinstance(http, httpx.AsyncClient):
            from .body import for_async  # not at start-up: only async calls use it
            kwargs = for_async(kwargs)
        timeout = action.deadline.timeout(http.timeout)
        if self._direct is not None:
            return self._direct.build(kwargs, action.url, timeout, anonymous=action.anonymous)
        if action.url is not None:
            kwargs = {**kwargs, "url": action.url}
        return http.build_request(**kwargs, timeout=timeout)


class KlingClient(_ClientBase[httpx.Client]):
    """Kling image-to-video through the anyfast.ai gateway.

    >>> with KlingClient() as kling:                  # token from ANYFAST_API_KEY
    ...     task = kling.create(image="cat.png", prompt="the cat jumps", mode="pro")
    ...     done = kling.wait(task, on_progress=print)
    ...     kling.download(done, "cat.mp4")
    """

    def _new_http(self, options: dict[str, Any], limits: httpx.Limits) -> httpx.Client:
        # built by httpx, so the environment's proxies apply as they do for any httpx
        # client (a `transport=` would turn them off); then deadline-aware (_wire)
        return _wire.use_deadlines(httpx.Client(**options, limits=limits), limits)

    @staticmethod
    def _default_clock() -> Clock:
        return SystemClock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # ------------------------------------------------------------------ calls

    @document_fields
    def create(self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /, *,
               timeout: float | None = None, allow_unknown_model: bool = False,
               fit: bool | FitMode = False, **fields: Unpack[CreateFields]) -> Task:
        """Create a task (billed once accepted) and return it, queued.

        Fields are keyword arguments (or a generated `ImageToVideoRequest` / dict, which
        keyword arguments override). Images may be `Image`s, paths, URLs or bytes. An
        `external_task_id` is filled in when none is given; it identifies the task if
        the answer is lost (AmbiguousCreateError carries it). `timeout`: seconds for the
        whole call, retries included (default: `deadlines.create`). A `model_name` the
        spec does not list is refused unless `allow_unknown_model=True`. What the spec's
        capability table says the model does not do is logged as a warning on the
        `kling_i2v` logger and kept in `Task.warnings`; the gateway has the last word.
        `fit=True` (or "crop") makes local images meet the image rules first (kling_i2v.fit)."""
        request_ = self._core.create_request(request, fields, allow_unknown_model=allow_unknown_model,
                                             fit=fit)
        return self._run(_flows.create(self._core, request_, self._deadline("create", timeout)))

    def get(self, task: TaskOrId, *, timeout: float | None = None) -> Task:
        """The task's current state."""
        return self._run(_flows.get(self._core, task, self._deadline("query", timeout)))

    def wait(self, task: TaskOrId, *, timeout: float = DEFAULT_WAIT_TIMEOUT,
             on_progress: ProgressCallback | None = None) -> Task:
        """Poll until the task finishes; returns it succeeded, raises TaskFailedError or
        WaitTimeoutError (which carries the last state seen) after `timeout` seconds.
        `on_progress` is called with the task whenever its status or progress changes."""
        waiter = self._core.waiter(task, timeout, on_progress, self._clock.monotonic)
        return self._run(_flows.wait(self._core, waiter, self._clock.monotonic,
                                     self._core.deadlines.query))

    def create_and_wait(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /, *,
        timeout: float = DEFAULT_WAIT_TIMEOUT, on_progress: ProgressCallback | None = None,
        fit: bool | FitMode = False, **fields: Unpack[CreateFields],
    ) -> Task:
        task = self.create(request, fit=fit, **fields)
        return self.wait(task, timeout=timeout, on_progress=on_progress)

    def download(self, task_or_url: TaskOrId, path: str | os.PathLike[str], *,
                 overwrite: bool = False, timeout: float | None = None) -> Path:
        """Stream the video of a task (a `Task`, or a task id: it is looked up) or of a URL
        to `path` (a file, or a folder to put `<task_id>.mp4` in). The video is verified
        (status, length, an MP4/MOV file that is whole, the size cap) and written to a
        temporary file beside `path`, renamed into place only when complete; an existing
        file is kept unless `overwrite=True`. Raises DownloadError otherwise."""
        return self._run(_flows.download(self._core, task_or_url, path, overwrite,
                                         self._deadline("download", timeout)))

    # ------------------------------------------------------------------ I/O

    def _deadline(self, operation: Any, seconds: float | None) -> _wire.Deadline:
        return self._core.deadline(operation, seconds, self._clock)

    def _run(self, flow: Flow[T]) -> T:
        step = _flows.Stepper(flow)
        while not step.done:
            try:
                if isinstance(step.action, Exchange):
                    step.send(self._exchange(step.action))
                elif isinstance(step.action, Blocking):
                    step.send(step.action.call())
                else:
                    if isinstance(step.action, Sleep):
                        self._clock.sleep(step.action.seconds)
                    step.send(None)
            except Exception as exc:  # noqa: BLE001 - the flow decides what it means
                step.throw(exc)
        return step.result

    def _exchange(self, action: Exchange) -> Any:
        request = self._exchange_request(self._http, action)
        token = _wire.enter(action.deadline)
        try:
            response = (self._direct.send(request) if self._direct is not None else
                        self._http.send(request, stream=True,
                                        auth=None if action.anonymous else httpx.USE_CLIENT_DEFAULT))
            try:
                if action.sink.begin(response):
                    for chunk in _wire.raw_chunks(response):
                        if not action.sink.feed(chunk):
                            break
            finally:
                response.close()
        except httpx.RequestError as exc:
            # `from None`: httpx's text may quote the server's bytes; ours is cleaned
            raise self._core.transport_error(exc, action.request, action.deadline) from None
        finally:
            _wire.leave(token)
        return action.sink.end()


class AsyncKlingClient(_ClientBase[httpx.AsyncClient]):
    """The same calls as KlingClient, awaitable, over one pooled httpx.AsyncClient."""

    def _new_http(self, options: dict[str, Any], limits: httpx.Limits) -> httpx.AsyncClient:
        from . import _pool  # imports httpcore: only once a client is made

        # our pool, as the sync client's (_wire.use_deadlines) has: httpcore's own pass costs
        # O(connections^2) with many idle connections (see _pool)
        return _pool.use_in(httpx.AsyncClient(**options, limits=limits), limits)

    @staticmethod
    def _default_clock() -> Clock:
        return SystemAsyncClock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @document_fields
    async def create(self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /, *,
                     timeout: float | None = None, allow_unknown_model: bool = False,
                     fit: bool | FitMode = False, **fields: Unpack[CreateFields]) -> Task:
        """See KlingClient.create."""
        request_ = self._core.create_request(request, fields, allow_unknown_model=allow_unknown_model,
                                             fit=fit)
        return await self._run(_flows.create(self._core, request_, self._deadline("create", timeout)))

    async def get(self, task: TaskOrId, *, timeout: float | None = None) -> Task:
        """See KlingClient.get."""
        return await self._run(_flows.get(self._core, task, self._deadline("query", timeout)))

    async def wait(self, task: TaskOrId, *, timeout: float = DEFAULT_WAIT_TIMEOUT,
                   on_progress: ProgressCallback | None = None) -> Task:
        """See KlingClient.wait; `on_progress` may be a coroutine function."""
        waiter = self._core.waiter(task, timeout, on_progress, self._clock.monotonic)
        return await self._run(_flows.wait(self._core, waiter, self._clock.monotonic,
                                           self._core.deadlines.query))

    async def create_and_wait(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /, *,
        timeout: float = DEFAULT_WAIT_TIMEOUT, on_progress: ProgressCallback | None = None,
        fit: bool | FitMode = False, **fields: Unpack[CreateFields],
    ) -> Task:
        task = await self.create(request, fit=fit, **fields)
        return await self.wait(task, timeout=timeout, on_progress=on_progress)

    async def download(self, task_or_url: TaskOrId, path: str | os.PathLike[str], *,
                       overwrite: bool = False, timeout: float | None = None) -> Path:
        """See KlingClient.download."""
        return await self._run(_flows.download(self._core, task_or_url, path, overwrite,
                                               self._deadline("download", timeout)))

    def _deadline(self, operation: Any, seconds: float | None) -> _wire.Deadline:
        return self._core.deadline(operation, seconds, self._clock)

    async def _run(self, flow: Flow[T]) -> T:
        # asyncio and inspect load here, not at import: a sync program (the CLI's
        # `status --json`, issue 12) need not pay ~12 ms for them
        import inspect

        step = _flows.Stepper(flow)
        while not step.done:
            action = step.action
            try:
                if isinstance(action, Exchange):
                    step.send(await self._exchange(action))
                    continue
                if isinstance(action, Blocking):
                    step.send(await _in_thread(action))
                    continue
                pending = (self._clock.sleep(action.seconds) if isinstance(action, Sleep)
                           else action.value)
                if inspect.isawaitable(pending):  # an async clock or on_progress
                    await pending
                step.send(None)
            except Exception as exc:  # noqa: BLE001 - the flow decides what it means
                step.throw(exc)
        return step.result

    async def _exchange(self, action: Exchange) -> Any:
        import asyncio

        request = self._exchange_request(self._http, action)
        response: httpx.Response | None = None
        read_whole = False
        try:
            try:
                # asyncio.timeout bounds the whole exchange, a trickle of headers included
                async with asyncio.timeout(action.deadline.remaining()):
                    response = await (self._direct.asend(request) if self._direct is not None else
                                      self._http.send(request, stream=True, auth=None if action.anonymous
                                                      else httpx.USE_CLIENT_DEFAULT))
                    if action.sink.begin(response):
                        async for chunk in _wire.araw_chunks(response):
                            if not action.sink.feed(chunk):
                                break
            finally:
                # closed outside the deadline: a deadline firing inside httpcore's close cut
                # it short (the pool kept the request, encode/httpcore#1115; _pool now lets it
                # go) and failed a call whose answer was in. The close reads nothing
                # (httpcore/_async/http11.py _response_closed: an unfinished response closes
                # the connection; TLS closes without waiting for the peer,
                # standard_compatible=False in httpcore/_backends/anyio.py): no deadline needed
                if response is not None:
                    # httpx closes a response itself once its body is read to the end
                    # (Response.aiter_raw, httpx/_models.py), still inside the deadline
                    read_whole = response.is_closed
                    await response.aclose()
        except TimeoutError:
            if read_whole:
                # the deadline fired in httpx's own close, after the whole answer, which
                # stands (for a create, DeadlineExceededError would make it ambiguous)
                return action.sink.end()
            raise action.deadline.exceeded() from None
        except httpx.RequestError as exc:
            raise self._core.transport_error(exc, action.request, action.deadline) from None
        return action.sink.end()


async def _in_thread(action: Blocking) -> Any:
    """`action.call()` in the event loop's default thread pool. A thread cannot be stopped:
    if the caller is cancelled meanwhile, this still waits for the call to end (one file
    operation: an open, an fsync, a rename) before the cancellation goes on, so the flow's
    own clean-up never runs under it, its error is never left unretrieved, and
    `action.undo` removes what it made (a half-made download's temporary file)."""
    import asyncio

    future = asyncio.get_running_loop().run_in_executor(None, action.call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue  # cancelled again: still the same call to wait for
            except Exception:  # noqa: BLE001, S110 - retrieved below, the cancellation wins
                break
        if not future.cancelled() and future.exception() is None and action.undo is not None:
            action.undo(future.result())
        raise
