"""Configuration and the I/O-free half of every call, shared by both clients: building
requests with the generated package, reading answers into tasks or errors, and the
bounds (sizes, deadlines, pool) every call runs within."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from . import _http, _wire
from ._download import DEFAULT_MAX_VIDEO_BYTES, Target, no_video, shown
from ._http import DEFAULT_TIMEOUT, BearerAuth, RetryPolicy, check_secure
from .errors import APIResponseError, ConfigurationError, DownloadError, KlingError
from .outcomes import Operation, Outcome, classify
from .polling import Clock, PollPolicy, Waiter
from .tasks import Task, check_task_id

if TYPE_CHECKING:
    from kling_i2v_api.models import ImageToVideoRequest

    from .requests import RequestBody

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_DEADLINES", "DEFAULT_MAX_CONNECTIONS", "ClientCore",
           "Deadlines", "Request", "TaskOrId"]

log = logging.getLogger("kling_i2v")

DEFAULT_BASE_URL = "https://www.anyfast.ai"
DEFAULT_MAX_CONNECTIONS = 32
"""The pool's size when the caller does not say how many calls run at once: above
httpx's 20 keep-alive connections, so 32 concurrent calls never churn connections."""

TaskOrId = Task | str
ProgressCallback = Callable[[Task], object]


@attrs.frozen
class Deadlines:
    """Seconds a whole call may take, retries and their waits included. httpx's timeouts
    bound each read; these bound the call (None: no bound beyond httpx's)."""

    create: float | None = 300.0
    """A 10 MB image upload on a slow link, plus retries of refused attempts."""
    query: float | None = 60.0
    download: float | None = 1800.0
    """A video of a few hundred MB on a slow link."""

    @classmethod
    def every(cls, seconds: float | None) -> Deadlines:
        return cls(create=seconds, query=seconds, download=seconds)

    def of(self, operation: Operation) -> float | None:
        value: float | None = getattr(self, operation)
        return value


DEFAULT_DEADLINES = Deadlines()


@attrs.frozen
class Request:
    """One call's request: `kwargs` go to httpx's build_request on every attempt (a
    streamed body, body.StreamedJSON, reads its files afresh each time it is iterated)."""

    operation: Operation
    kwargs: dict[str, Any]
    external_task_id: str | None = None
    warnings: tuple[str, ...] = ()
    """Capability warnings about a create's request (capabilities.capability_warnings)."""
    model_listed: bool = True
    """Whether a create's model_name is one the spec lists (outcomes.classify reads it)."""

    @property
    def url(self) -> httpx.URL:
        return httpx.URL(self.kwargs["url"])


class ClientCore:
    """Everything about a call that does not depend on sync or async I/O."""

    def __init__(
        self, token: str | None, base_url: str | None, *, retry: RetryPolicy | None,
        max_retries: int | None, poll: PollPolicy | None, validate: bool,
        deadlines: Deadlines | float | None = None, max_response_bytes: int | None = None,
        max_video_bytes: int | None = None,
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
        given = base_url or os.environ.get("ANYFAST_BASE_URL") or DEFAULT_BASE_URL
        try:
            url = httpx.URL(given)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise ConfigurationError(f"base_url is not a valid URL ({exc}): {given[:200]!r}") from None
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
        self.deadlines = (deadlines if isinstance(deadlines, Deadlines)
                          else DEFAULT_DEADLINES if deadlines is None else Deadlines.every(deadlines))
        self.max_response_bytes = _positive("max_response_bytes", max_response_bytes,
                                            _wire.DEFAULT_MAX_RESPONSE_BYTES)
        self.max_video_bytes = _positive("max_video_bytes", max_video_bytes, DEFAULT_MAX_VIDEO_BYTES)

    def deadline(self, operation: Operation, seconds: float | None, clock: Clock) -> _wire.Deadline:
        """The deadline of one call: `seconds` if the call gave one, else the default."""
        return _wire.Deadline(operation, self.deadlines.of(operation) if seconds is None else seconds,
                              clock.monotonic)

    # ------------------------------------------------------------------ requests

    def create_request(
        self, request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None,
        fields: Mapping[str, Any], *, allow_unknown_model: bool = False, fit: bool | str = False,
    ) -> Request:
        from kling_i2v_api.api.image2video import create_image_to_video

        # only a create builds a body: a program that reads tasks loads none of these
        # (issue 12: status --json start-up, tests/test_startup_imports.py)
        from .body import streamed
        from .capabilities import capability_warnings, model_listed
        from .requests import build_request_body

        if fit:  # kling_i2v.fit: local images made to meet the image rules first
            from .fit import fit_fields

            fields = fit_fields(fields, mode="crop" if fit == "crop" else "pad").fields

        body = build_request_body(request, fields, validate=self.validate,
                                  allow_unknown_model=allow_unknown_model)
        # The fields are JSON-ready and checked against the spec already: the generated
        # build_request takes them as they are (a round trip through the generated model,
        # ImageToVideoRequest.from_dict().to_dict(), cost ~9 us a call and checked nothing
        # more; with validate=False it dropped the keys the spec does not know yet, which
        # are now sent as given; its field order only changed the bytes, JSON objects are
        # unordered, RFC 8259 section 4)
        kwargs = create_image_to_video.build_request(body=body.fields)
        warnings = tuple(capability_warnings(body.fields))
        for warning in warnings:
            log.warning("%s", warning)
        # local images are streamed from their files as the body is sent (body.py)
        return Request("create", streamed(kwargs, body), body.external_task_id, warnings,
                       model_listed=model_listed(body.fields.get("model_name")))

    @staticmethod
    def query_request(task: TaskOrId) -> Request:
        from kling_i2v_api.api.image2video import get_image_to_video_task

        task_id = task.task_id if isinstance(task, Task) else task
        try:
            task_id = check_task_id(task_id.strip() if isinstance(task_id, str) else task_id)
        except ValueError as exc:
            raise ConfigurationError(str(exc).replace("a task id", "task_id")) from None
        return Request("query", get_image_to_video_task.build_request(task_id=task_id))

    @staticmethod
    def needs_lookup(task_or_url: TaskOrId) -> bool:
        """Whether download() must ask the gateway first: for a task id, or for a Task
        seen before its video existed."""
        if isinstance(task_or_url, Task):
            return task_or_url.video_url is None
        return "://" not in task_or_url and not task_or_url.lower().startswith("data:")

    @staticmethod
    def download_request(task_or_url: TaskOrId) -> Request:
        if isinstance(task_or_url, Task):
            if task_or_url.video_url is None:
                raise no_video(task_or_url)
            url = task_or_url.video_url
        else:
            url = task_or_url
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:  # "http://[::1/x"
            raise KlingError(f"the video URL is not a valid URL ({exc}): {url[:200]!r}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise KlingError(f"can only download http(s) URLs, got {url[:200]!r}")
        return Request("download", {"method": "GET", "url": parsed})

    def download_target(self, path: str | os.PathLike[str], task_or_url: TaskOrId,
                        overwrite: bool) -> Target:
        return Target(path, task_or_url, overwrite, reader=self.reader, max_bytes=self.max_video_bytes)

    def redirect(self, url: httpx.URL, location: str) -> httpx.URL:
        """The next hop of a video download: only to http(s), never from https to http."""
        try:
            target = url.join(location.strip())
        except (httpx.InvalidURL, ValueError, TypeError):
            raise DownloadError(f"redirected to an invalid URL {self.reader.clean(location)[:120]!r}",
                                url=shown(url)) from None
        if target.scheme not in ("http", "https") or not target.host or (
                url.scheme == "https" and target.scheme == "http"):
            raise DownloadError(f"refusing a redirect to {self.reader.clean(str(target))[:120]!r} "
                                "(only http(s), and never from https to http)", url=shown(url))
        return target

    @staticmethod
    def too_many_redirects(url: httpx.URL, limit: int) -> DownloadError:
        return DownloadError(f"more than {limit} redirects", url=shown(url))

    # ------------------------------------------------------------------ answers

    def answer_sink(self, request: Request, deadline: _wire.Deadline) -> AnswerSink:
        return AnswerSink(self, request, deadline)

    def read_created(self, response: httpx.Response, request: Request) -> Task:
        from kling_i2v_api.models import VideoTask

        try:
            created = VideoTask.from_dict(self.reader.json(response))
            return Task.from_created(created, external_task_id=request.external_task_id,
                                     secrets=self.reader.secrets, warnings=request.warnings)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # HTTP 200: the gateway accepted (and will bill) the task; an answer without a
            # readable id is for outcomes.classify to judge (ambiguous)
            error = self.reader.malformed(response, "create answer", exc)
            error.external_task_id = request.external_task_id
            raise error from None
        except APIResponseError as error:
            error.external_task_id = request.external_task_id
            raise

    def read_query(self, response: httpx.Response) -> Task:
        from kling_i2v_api.models import TaskQueryResponse

        data = self.reader.json(response)
        try:
            return Task.from_query(TaskQueryResponse.from_dict(data), secrets=self.reader.secrets)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # `from None`: the cause's text may quote the server's values
            raise self.reader.malformed(response, "task query answer", exc) from None

    def transport_error(self, exc: httpx.RequestError, request: Request,
                        deadline: _wire.Deadline) -> KlingError:
        if request.operation == "download" and isinstance(exc, httpx.RemoteProtocolError):
            # h11: "peer closed connection without sending complete message body"
            return DownloadError(f"the body was cut ({self.reader.clean(str(exc))[:160]})",
                                 url=shown(request.url), retryable=True)
        error = _http.transport_error(exc, request.external_task_id)
        remaining = deadline.remaining()
        if isinstance(exc, httpx.TimeoutException) and remaining is not None and remaining <= 0:
            error = deadline.exceeded(request_sent=getattr(error, "request_sent", True))
            error.external_task_id = request.external_task_id
        return error

    @staticmethod
    def final(error: BaseException, request: Request) -> BaseException:
        """The exception a call raises for `error`: an AmbiguousCreateError (caused by
        `error`) when outcomes.classify finds a create's outcome ambiguous, else `error`."""
        if (request.operation != "create"
                or classify("create", error, model_listed=request.model_listed)
                is not Outcome.AMBIGUOUS):
            return error
        wrapped = _http.ambiguous(error, request.external_task_id)
        if wrapped is not error:
            wrapped.__cause__ = error
            wrapped.__suppress_context__ = True
        return wrapped

    def waiter(self, task: TaskOrId, timeout: float, on_progress: ProgressCallback | None,
               monotonic: Callable[[], float]) -> Waiter:
        task_id = task.task_id if isinstance(task, Task) else task
        return Waiter(task_id, timeout=timeout, policy=self.poll, monotonic=monotonic,
                      on_progress=on_progress)

    def http_options(self, timeout: httpx.Timeout | float | None) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "auth": self.auth,
            "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
            "headers": {"User-Agent": _user_agent(), "Accept-Encoding": "gzip, deflate"},
            "follow_redirects": False,  # a redirect must not carry the token elsewhere
        }


class AnswerSink:
    """An API answer, read into memory up to the cap (an error answer: its first 64 KiB)."""

    def __init__(self, core: ClientCore, request: Request, deadline: _wire.Deadline) -> None:
        self.core = core
        self.request = request
        self.deadline = deadline
        self.response: httpx.Response | None = None
        self.body: _wire.Body | None = None

    def begin(self, response: httpx.Response) -> bool:
        self.response = response
        ok = 200 <= response.status_code < 300
        self.body = _wire.Body(
            response, limit=self.core.max_response_bytes if ok else _wire.ERROR_BODY_BYTES,
            deadline=self.deadline, truncate=not ok)
        return True

    def feed(self, raw: bytes) -> bool:
        assert self.body is not None
        return self.body.feed(raw)

    def end(self) -> httpx.Response:
        assert self.response is not None and self.body is not None
        response = _wire.answer(self.response, self.body.content())
        if not 200 <= response.status_code < 300:
            raise self.core.reader.status_error(response, self.request.external_task_id)
        return response


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of bytes, got {value!r}")
    return value


def _user_agent() -> str:
    from ._version import __version__

    return f"kling-i2v/{__version__} httpx/{httpx.__version__}"
