"""Every error the client raises.

    KlingError
    ├── ConfigurationError            no token, or a base URL that would leak it
    ├── RequestValidationError        the request breaks openapi.yaml; nothing was sent
    ├── ImageError                    a local image breaks the upstream image rules
    ├── APIError                      something went wrong talking to the gateway
    │   ├── APIConnectionError        no usable answer (refused, reset, DNS, TLS)
    │   │   └── APITimeoutError
    │   ├── AmbiguousCreateError      a create was sent but its outcome is unknown
    │   ├── APIResponseError          an answer that is not what the spec says
    │   └── APIStatusError            an HTTP error status, from either gateway error shape
    │       ├── BadRequestError           400
    │       │   └── TaskNotFoundError     400 task_not_exist
    │       ├── AuthenticationError       401
    │       ├── PermissionDeniedError     403
    │       ├── NotFoundError             404
    │       ├── RateLimitError            429
    │       └── ServerError               5xx
    ├── TaskFailedError               the task ended in failure
    └── WaitTimeoutError              wait() gave up before the task finished

No message, str() or repr() here ever contains the API token: error texts are built
from response bodies and request fields only, and values are shortened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .tasks import Task

__all__ = [
    "MISSING",
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ImageError",
    "KlingError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ServerError",
    "TaskFailedError",
    "TaskNotFoundError",
    "Violation",
    "WaitTimeoutError",
    "shorten",
]

_MAX_VALUE_CHARS = 60


class _Missing:
    """The value of a field that is required but absent."""

    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


def shorten(value: Any, limit: int = _MAX_VALUE_CHARS) -> str:
    """A value as it appears in messages: JSON-ish, and never longer than `limit` chars."""
    if value is MISSING:
        return "missing"
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # pragma: no cover - default=repr makes this rare
        text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes | list | dict) else len(text)
    unit = "items" if isinstance(value, list | dict) else "chars"
    return f"{text[: limit - 20]}… ({size} {unit})"


class KlingError(Exception):
    """Base of every error this package raises."""


# --------------------------------------------------------------------- input


class ConfigurationError(KlingError, ValueError):
    """The client cannot be used as configured (no token, insecure base URL, ...)."""


@attrs.frozen
class Violation:
    """One broken rule: where, which rule, and the value found there."""

    path: str
    """`multi_prompt[2].duration`, or `(request)` for rules about the whole body."""
    rule: str
    value: Any = attrs.field(repr=lambda v: shorten(v))

    def __str__(self) -> str:
        got = "missing" if self.value is MISSING else f"got {shorten(self.value)}"
        return f"{self.path}: {self.rule} ({got})"


class RequestValidationError(KlingError, ValueError):
    """The request breaks openapi.yaml. Nothing was sent."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        count = len(self.violations)
        message = f"invalid request, {count} problem{'s' if count != 1 else ''}:\n{lines}"
        # a lone surrogate in a value or a key would make the message unprintable
        super().__init__(message.encode("utf-8", "backslashreplace").decode("utf-8"))

    @property
    def fields(self) -> list[str]:
        return [v.path for v in self.violations]


class ImageError(KlingError, ValueError):
    """A local image breaks the upstream rules (format, size, sides, aspect ratio)."""

    def __init__(self, source: str, rule: str, value: Any) -> None:
        self.source = source
        self.rule = rule
        self.value = value
        super().__init__(f"{source}: {rule} (got {value})")


# --------------------------------------------------------------------- transport


class APIError(KlingError):
    """Talking to the gateway went wrong.

    On errors raised by a create call, `external_task_id` is the id the request
    carried, so the task can be recognised if it was created after all.
    """

    external_task_id: str | None = None

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class APIConnectionError(APIError):
    """No usable HTTP answer: connection refused or reset, DNS, TLS.

    `request_sent` is False when the request certainly never reached the server
    (connection refused, connect timeout), which is what makes a create safe to retry.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        self.request_sent = request_sent
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The gateway did not answer in time."""


class AmbiguousCreateError(APIError):
    """A create request was sent and may have been accepted, but no answer came back.

    The client does not retry it, since a retry could pay twice. The task, if it
    exists, carries `external_task_id`; look for it before creating again.
    """

    def __init__(self, message: str, *, external_task_id: str | None) -> None:
        self.external_task_id = external_task_id
        super().__init__(f"{message}; external_task_id={external_task_id}")


class APIResponseError(APIError):
    """An answer the spec does not allow: not JSON, wrong types, missing fields."""

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        self.status_code = status_code
        self.body = body
        super().__init__(message)


class APIStatusError(APIError):
    """An HTTP error status. `code`, `message` and `request_id` come from either gateway
    error shape: `{"error": {"message", "type", "code"}}` or `{"code", "message", "data"}`."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        body: str = "",
        retry_after: float | None = None,
        shape: str = "other",
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        self.shape = shape
        """`gateway` ({"error": ...}, routing and auth), `task` ({"code", "message"}) or `other`."""
        detail = f" [{code}]" if code else ""
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(f"HTTP {status_code}{detail}: {message}{rid}")
        self.message = message


class BadRequestError(APIStatusError):
    """400: the gateway or upstream refused the request."""


class TaskNotFoundError(BadRequestError):
    """400 `task_not_exist`: the gateway does not know this task id."""


class AuthenticationError(APIStatusError):
    """401: missing or invalid token."""


class PermissionDeniedError(APIStatusError):
    """403: the token may not use this model or route."""


class NotFoundError(APIStatusError):
    """404: unknown route or resource."""


class RateLimitError(APIStatusError):
    """429: rate, quota or upstream concurrency limit."""


class ServerError(APIStatusError):
    """5xx: the gateway or the upstream failed."""


# --------------------------------------------------------------------- tasks


class TaskFailedError(KlingError):
    """The task finished in failure; `reason` is the gateway's or upstream's text."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.reason = task.fail_reason or "no reason given"
        super().__init__(f"task {task.task_id} failed: {self.reason}")


class WaitTimeoutError(KlingError, TimeoutError):
    """wait() gave up; `task` is the last state seen (the task may still finish)."""

    def __init__(self, task: Task | None, timeout: float, task_id: str) -> None:
        self.task = task
        self.timeout = timeout
        self.task_id = task_id
        state = f"{task.status} at {task.progress}%" if task is not None else "never seen"
        super().__init__(f"task {task_id} not finished after {timeout:g}s (last seen: {state})")
