"""KlingClient and AsyncKlingClient: one pooled connection, validation before sending,
retries that never pay twice, and wait / download helpers.

Both clients build requests with the generated package (`_get_kwargs` of each
endpoint module) and read answers into its models; `_ClientCore` holds everything
that does not depend on sync or async I/O.
"""

from __future__ import annotations

import errno
import inspect
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack

import attrs
import httpx

from . import _http
from ._http import DEFAULT_TIMEOUT, BearerAuth, Operation, RetryPolicy, check_secure
from .errors import APIResponseError, ConfigurationError, KlingError
from .outcomes import Outcome, classify
from .polling import AsyncClock, Clock, PollPolicy, SystemAsyncClock, SystemClock, Waiter
from .body import for_async, streamed
from .requests import CreateFields, RequestBody, build_request_body
from .tasks import Task

if TYPE_CHECKING:
    import tenacity
    from kling_i2v_api.models import ImageToVideoRequest

__all__ = ["DEFAULT_BASE_URL", "AsyncKlingClient", "KlingClient"]

DEFAULT_BASE_URL = "https://www.anyfast.ai"
DEFAULT_WAIT_TIMEOUT = 1800.0
"""wait()'s default: Kling pro renders of 10 s and more can take well over ten minutes."""

TaskOrId = Task | str
ProgressCallback = Callable[[Task], object]


@attrs.frozen
class _Request:
    operation: Operation
    kwargs: dict[str, Any]
    external_task_id: str | None = None


class _ClientCore:
    """Configuration and the I/O-free half of every call."""

    def __init__(
        self,
        token: str | None,
        base_url: str | None,
        *,
        retry: RetryPolicy | None,
        max_retries: int | None,
        poll: PollPolicy | None,
        validate: bool,
    ) -> None:
        token = token if token is not None else os.environ.get("ANYFAST_API_KEY")
        if not token or not token.strip():
            raise ConfigurationError("no API token: pass token=... or set ANYFAST_API_KEY")
        if not re.fullmatch(r"[\x21-\x7e]+", token.strip()):
            # the HTTP layer would refuse the header with a message that quotes it whole
            raise ConfigurationError(
                "the API token has a space, a control character or a non-ASCII character "
                "inside it: check how it was copied"
            )
        url = httpx.URL(base_url or os.environ.get("ANYFAST_BASE_URL") or DEFAULT_BASE_URL)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(f"base_url must be an http(s) URL with a host, got {str(url)!r}")
        check_secure(url)
        self.base_url = url
        self.auth = BearerAuth(token.strip(), url)
        self.reader = _http.Reader(str(url), (token.strip(),))
        retry = retry or RetryPolicy()
        self.retry = retry if max_retries is None else attrs.evolve(retry, max_retries=max_retries)
        self.poll = poll or PollPolicy()
        self.validate = validate

    # ------------------------------------------------------------------ requests

    def create_request(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None, fields: Mapping[str, Any]
    ) -> _Request:
        from kling_i2v_api.api.image2video import create_image_to_video
        from kling_i2v_api.models import ImageToVideoRequest

        body = build_request_body(request, fields, validate=self.validate)
        try:
            kwargs = create_image_to_video._get_kwargs(body=ImageToVideoRequest.from_dict(body.fields))
        except (KeyError, TypeError, ValueError):
            if self.validate:
                raise
            # validation is off and the body is beyond what the generated model knows
            # (a newer enum value, say): send it as given
            kwargs = {"method": "post", "url": "/kling/v1/videos/image2video", "json": body.fields}
        # local images are streamed from their files as the body is sent (body.py)
        return _Request("create", streamed(kwargs, body), body.external_task_id)

    @staticmethod
    def query_request(task: TaskOrId) -> _Request:
        from kling_i2v_api.api.image2video import get_image_to_video_task

        task_id = task.task_id if isinstance(task, Task) else task
        if not isinstance(task_id, str) or task_id.strip() in ("", ".", ".."):
            # "." and ".." are dot segments: the URL would be normalised to another route
            raise ConfigurationError(f"task_id must be a non-empty string, got {task_id!r}")
        return _Request("query", get_image_to_video_task._get_kwargs(task_id=task_id.strip()))

    @staticmethod
    def needs_lookup(task_or_url: TaskOrId) -> bool:
        """Whether download() must ask the gateway first: for a task id, or for a Task
        seen before its video existed."""
        if isinstance(task_or_url, Task):
            return task_or_url.video_url is None
        return "://" not in task_or_url and not task_or_url.lower().startswith("data:")

    @staticmethod
    def download_request(task_or_url: TaskOrId) -> _Request:
        if isinstance(task_or_url, Task):
            if task_or_url.video_url is None:
                raise KlingError(f"{task_or_url} has no video to download yet")
            url = task_or_url.video_url
        else:
            url = task_or_url
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https"):
            raise KlingError(f"can only download http(s) URLs, got {url!r}")
        return _Request("download", {"method": "GET", "url": parsed})

    # ------------------------------------------------------------------ answers

    def read_created(self, response: httpx.Response, request: _Request) -> Task:
        from kling_i2v_api.models import VideoTask

        try:
            try:
                created = VideoTask.from_dict(self.reader.json(response))
                return Task.from_created(created, external_task_id=request.external_task_id,
                                         secrets=self.reader.secrets)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise self.reader.malformed(response, "create answer", exc) from None
        except APIResponseError as error:
            # HTTP 200 means the gateway accepted (and will bill) the task: an answer
            # without a readable id is for outcomes.classify to judge (ambiguous)
            error.external_task_id = request.external_task_id
            raise self.final(error, request)  # noqa: B904 - final() sets the cause

    def read_query(self, response: httpx.Response) -> Task:
        from kling_i2v_api.models import TaskQueryResponse

        data = self.reader.json(response)
        try:
            return Task.from_query(TaskQueryResponse.from_dict(data), secrets=self.reader.secrets)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # `from None`: the cause's text may quote the server's values
            raise self.reader.malformed(response, "task query answer", exc) from None

    def checked(self, response: httpx.Response, request: _Request) -> httpx.Response:
        if not 200 <= response.status_code < 300:
            raise self.reader.status_error(response, request.external_task_id)
        return response

    @staticmethod
    def transport_error(exc: httpx.RequestError, request: _Request) -> KlingError:
        return _http.transport_error(exc, request.external_task_id)

    @staticmethod
    def final(error: BaseException, request: _Request) -> BaseException:
        """The exception a call raises for `error`: an AmbiguousCreateError (caused by
        `error`) when outcomes.classify finds a create's outcome ambiguous, else `error`."""
        if request.operation != "create" or classify("create", error) is not Outcome.AMBIGUOUS:
            return error
        wrapped = _http.ambiguous(error, request.external_task_id)
        if wrapped is not error:
            wrapped.__cause__ = error
            wrapped.__suppress_context__ = True
        return wrapped

    def retrying(self, operation: Operation, sleep: Callable[[float], Any]) -> tenacity.Retrying:
        import tenacity  # noqa: PLC0415  (only once a retry is due: it is a slow import)

        return tenacity.Retrying(**self.retry_options(operation, sleep))

    def async_retrying(
        self, operation: Operation, sleep: Callable[[float], Any]
    ) -> tenacity.AsyncRetrying:
        import tenacity  # noqa: PLC0415

        return tenacity.AsyncRetrying(**self.retry_options(operation, sleep))

    def retry_options(self, operation: Operation, sleep: Callable[[float], Any]) -> dict[str, Any]:
        import tenacity  # noqa: PLC0415

        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return policy.delay(state.attempt_number, error)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            if error is not None:
                _http.log_retry(operation, state.attempt_number, policy, error, delay)

        return {
            "stop": tenacity.stop_after_attempt(policy.max_retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(lambda e: _http.is_retryable(e, operation)),
            "before_sleep": before_sleep,
            "sleep": sleep,
            "reraise": True,
        }

    def waiter(
        self, task: TaskOrId, timeout: float, on_progress: ProgressCallback | None,
        monotonic: Callable[[], float],
    ) -> Waiter:
        task_id = task.task_id if isinstance(task, Task) else task
        return Waiter(task_id, timeout=timeout, policy=self.poll, monotonic=monotonic,
                      on_progress=on_progress)

    def http_options(self, timeout: httpx.Timeout | float | None) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "auth": self.auth,
            "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
            "headers": {"User-Agent": _user_agent()},
            "follow_redirects": False,  # a redirect must not carry the token elsewhere
        }


def _user_agent() -> str:
    from ._version import __version__

    return f"kling-i2v/{__version__} httpx/{httpx.__version__}"


def _file_name(task_id: str) -> str:
    """A file name from a task id, which comes from the gateway: "../x" or "/etc/x" must
    not take the video out of the folder it was asked into."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", task_id.strip())[:200].lstrip(".")
    return name or "video"


def _exists(target: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, "exists; pass overwrite=True to replace it", str(target))


class _Download:
    """A file being written next to its final name, moved into place only when whole."""

    def __init__(self, path: str | os.PathLike[str], task_or_url: TaskOrId, overwrite: bool) -> None:
        target = Path(path)
        if target.is_dir() or os.fspath(path).endswith(("/", os.sep)):
            target.mkdir(parents=True, exist_ok=True)
            if isinstance(task_or_url, Task):
                name = _file_name(task_or_url.task_id)
            else:  # the URL's own file name, so two URLs into one folder do not collide
                name = _file_name(Path(httpx.URL(task_or_url).path).stem) if "://" in task_or_url else ""
                name = name if name != "video" and name else "video"
            target = target / f"{name}.mp4"
        if target.exists() and not overwrite:
            raise _exists(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target = target
        self.overwrite = overwrite
        # Not tempfile.mkstemp: its files are private (0600), and the video should get the
        # mode any new file gets (0666 less the umask). O_EXCL keeps the name ours alone.
        import secrets  # noqa: PLC0415

        self.temp = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.file = os.fdopen(fd, "wb")
        self.expected: int | None = None

    def restart(self, response: httpx.Response) -> None:
        self.file.seek(0)
        self.file.truncate()
        length = response.headers.get("content-length")
        self.expected = int(length) if length and length.isdigit() else None

    def finish(self) -> Path:
        self.file.flush()
        os.fsync(self.file.fileno())
        written = self.file.tell()
        self.file.close()
        if self.expected is not None and written != self.expected:
            raise KlingError(f"download truncated: {written} of {self.expected} bytes")
        if self.overwrite:
            os.replace(self.temp, self.target)
        else:
            try:
                os.link(self.temp, self.target)  # fails, atomically, if the name was taken meanwhile
            except FileExistsError:
                raise _exists(self.target) from None
            except OSError:  # a file system without hard links
                os.replace(self.temp, self.target)
            self.temp.unlink(missing_ok=True)
        return self.target

    def abandon(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.temp.unlink(missing_ok=True)


# ============================================================================ sync


class _ClientBase:
    _core: _ClientCore

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._core.base_url)!r})"

    @property
    def base_url(self) -> str:
        return str(self._core.base_url)


class KlingClient(_ClientBase):
    """Kling image-to-video through the anyfast.ai gateway.

    >>> with KlingClient() as kling:                  # token from ANYFAST_API_KEY
    ...     task = kling.create(image="cat.png", prompt="the cat jumps", mode="pro")
    ...     done = kling.wait(task, on_progress=print)
    ...     kling.download(done, "cat.mp4")
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        poll: PollPolicy | None = None,
        validate: bool = True,
        http_client: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`token` defaults to $ANYFAST_API_KEY, `base_url` to $ANYFAST_BASE_URL or
        https://www.anyfast.ai. `validate=False` skips the client-side checks against
        openapi.yaml. `http_client` replaces the pooled httpx.Client (its own settings,
        TLS included, are then used as given; the client does not close it)."""
        self._core = _ClientCore(token, base_url, retry=retry, max_retries=max_retries,
                                 poll=poll, validate=validate)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(**self._core.http_options(timeout))
        self._http.auth = self._core.auth
        self._clock: Clock = clock or SystemClock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # ------------------------------------------------------------------ calls

    def create(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /,
        **fields: Unpack[CreateFields],
    ) -> Task:
        """Create a task (billed once accepted) and return it, queued.

        Fields are keyword arguments (or a generated `ImageToVideoRequest` / dict, which
        keyword arguments override). Images may be `Image`s, paths, URLs or bytes. An
        `external_task_id` is filled in when none is given; it identifies the task if
        the answer is lost (AmbiguousCreateError carries it)."""
        request_ = self._core.create_request(request, fields)
        response = self._send(request_)
        return self._core.read_created(response, request_)

    def get(self, task: TaskOrId) -> Task:
        """The task's current state."""
        return self._core.read_query(self._send(self._core.query_request(task)))

    def wait(self, task: TaskOrId, *, timeout: float = DEFAULT_WAIT_TIMEOUT,
             on_progress: ProgressCallback | None = None) -> Task:
        """Poll until the task finishes; returns it succeeded, raises TaskFailedError or
        WaitTimeoutError (which carries the last state seen). `on_progress` is called
        with the task whenever its status or progress changes."""
        waiter = self._core.waiter(task, timeout, on_progress, self._clock.monotonic)
        while True:
            waiter.observe(self.get(waiter.task_id))
            done = waiter.outcome()
            if done is not None:
                return done
            self._clock.sleep(waiter.next_sleep())

    def create_and_wait(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /, *,
        timeout: float = DEFAULT_WAIT_TIMEOUT, on_progress: ProgressCallback | None = None,
        **fields: Unpack[CreateFields],
    ) -> Task:
        task = self.create(request, **fields)
        return self.wait(task, timeout=timeout, on_progress=on_progress)

    def download(self, task_or_url: TaskOrId, path: str | os.PathLike[str], *,
                 overwrite: bool = False) -> Path:
        """Stream the video of a task (a `Task`, or a task id: it is looked up) or of a URL
        to `path` (a file, or a folder to put `<task_id>.mp4` in).
        Written to a temporary file beside it and renamed into place when complete; an
        existing file is kept unless `overwrite=True`."""
        if self._core.needs_lookup(task_or_url):
            task_or_url = self.get(task_or_url)
        request = self._core.download_request(task_or_url)
        download = _Download(path, task_or_url, overwrite)
        try:
            self._core.retrying("download", self._clock.sleep)(
                self._download_once, request, download
            )
            return download.finish()
        finally:
            download.abandon()

    # ------------------------------------------------------------------ I/O

    def _send(self, request: _Request) -> httpx.Response:
        # The first attempt runs outside tenacity, which costs ~20 us a call (benchmarks/:
        # ~6% of a loopback create); a retryable failure is handed to tenacity as its own
        # first attempt, so retries, waits and logs are as before.
        try:
            return self._send_once(request)
        except Exception as error:
            if not _http.is_retryable(error, request.operation):
                raise self._core.final(error, request)  # noqa: B904 - final() sets the cause
            first: Exception | None = error

        def attempt() -> httpx.Response:
            nonlocal first
            if first is not None:
                error, first = first, None
                raise error
            return self._send_once(request)

        retrying = self._core.retrying(request.operation, self._clock.sleep)
        try:
            response: httpx.Response = retrying(attempt)
        except Exception as error:
            raise self._core.final(error, request)  # noqa: B904
        return response

    def _send_once(self, request: _Request) -> httpx.Response:
        try:
            response = self._http.request(**request.kwargs)
        except httpx.RequestError as exc:  # DecodingError too: a body unlike its Content-Encoding
            raise self._core.transport_error(exc, request) from exc
        return self._core.checked(response, request)

    def _download_once(self, request: _Request, download: _Download) -> None:
        try:
            with self._http.stream(**request.kwargs) as response:
                if not response.is_success:
                    response.read()
                self._core.checked(response, request)
                download.restart(response)
                for chunk in response.iter_bytes(1 << 16):
                    download.file.write(chunk)
        except httpx.RequestError as exc:  # DecodingError too: a body unlike its Content-Encoding
            raise self._core.transport_error(exc, request) from exc


# =========================================================================== async


class AsyncKlingClient(_ClientBase):
    """The same calls as KlingClient, awaitable, over one pooled httpx.AsyncClient."""

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        poll: PollPolicy | None = None,
        validate: bool = True,
        http_client: httpx.AsyncClient | None = None,
        clock: AsyncClock | None = None,
    ) -> None:
        self._core = _ClientCore(token, base_url, retry=retry, max_retries=max_retries,
                                 poll=poll, validate=validate)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(**self._core.http_options(timeout))
        self._http.auth = self._core.auth
        self._clock: AsyncClock = clock or SystemAsyncClock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def create(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /,
        **fields: Unpack[CreateFields],
    ) -> Task:
        """See KlingClient.create."""
        request_ = self._core.create_request(request, fields)
        response = await self._send(request_)
        return self._core.read_created(response, request_)

    async def get(self, task: TaskOrId) -> Task:
        """See KlingClient.get."""
        return self._core.read_query(await self._send(self._core.query_request(task)))

    async def wait(self, task: TaskOrId, *, timeout: float = DEFAULT_WAIT_TIMEOUT,
                   on_progress: ProgressCallback | None = None) -> Task:
        """See KlingClient.wait."""
        waiter = self._core.waiter(task, timeout, on_progress, self._clock.monotonic)
        while True:
            reported = waiter.observe(await self.get(waiter.task_id))
            if inspect.isawaitable(reported):  # an async on_progress
                await reported
            done = waiter.outcome()
            if done is not None:
                return done
            await self._clock.sleep(waiter.next_sleep())

    async def create_and_wait(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None = None, /, *,
        timeout: float = DEFAULT_WAIT_TIMEOUT, on_progress: ProgressCallback | None = None,
        **fields: Unpack[CreateFields],
    ) -> Task:
        task = await self.create(request, **fields)
        return await self.wait(task, timeout=timeout, on_progress=on_progress)

    async def download(self, task_or_url: TaskOrId, path: str | os.PathLike[str], *,
                       overwrite: bool = False) -> Path:
        """See KlingClient.download."""
        if self._core.needs_lookup(task_or_url):
            task_or_url = await self.get(task_or_url)
        request = self._core.download_request(task_or_url)
        download = _Download(path, task_or_url, overwrite)
        try:
            await self._core.async_retrying("download", self._clock.sleep)(
                self._download_once, request, download
            )
            return download.finish()
        finally:
            download.abandon()

    async def _send(self, request: _Request) -> httpx.Response:
        # See KlingClient._send: tenacity only once an attempt has failed retryably.
        try:
            return await self._send_once(request)
        except Exception as error:
            if not _http.is_retryable(error, request.operation):
                raise self._core.final(error, request)  # noqa: B904 - final() sets the cause
            first: Exception | None = error

        async def attempt() -> httpx.Response:
            nonlocal first
            if first is not None:
                error, first = first, None
                raise error
            return await self._send_once(request)

        retrying = self._core.async_retrying(request.operation, self._clock.sleep)
        try:
            response: httpx.Response = await retrying(attempt)
        except Exception as error:
            raise self._core.final(error, request)  # noqa: B904
        return response

    async def _send_once(self, request: _Request) -> httpx.Response:
        try:
            response = await self._http.request(**for_async(request.kwargs))
        except httpx.RequestError as exc:  # DecodingError too: a body unlike its Content-Encoding
            raise self._core.transport_error(exc, request) from exc
        return self._core.checked(response, request)

    async def _download_once(self, request: _Request, download: _Download) -> None:
        try:
            async with self._http.stream(**request.kwargs) as response:
                if not response.is_success:
                    await response.aread()
                self._core.checked(response, request)
                download.restart(response)
                async for chunk in response.aiter_bytes(1 << 16):
                    download.file.write(chunk)
        except httpx.RequestError as exc:  # DecodingError too: a body unlike its Content-Encoding
            raise self._core.transport_error(exc, request) from exc
