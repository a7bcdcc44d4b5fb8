"""Every error the client raises.

    KlingError
    ├── ConfigurationError            no token, or a base URL that would leak it
    │   └── MissingExtraError         fitting images needs the `images` extra (also an ImportError)
    ├── RequestValidationError        the request breaks openapi.yaml; nothing was sent
    ├── ImageError                    a local image breaks the upstream image rules
    ├── ManifestError                 a batch manifest (or folder) cannot be run
    ├── JournalError                  a batch journal is locked, foreign or unusable
    │   └── TaskLogError              the task log beside it cannot be read or written
    ├── APIError                      something went wrong talking to the gateway
    │   ├── APIConnectionError        no usable answer (refused, reset, DNS, TLS)
    │   │   └── APITimeoutError
    │   │       └── DeadlineExceededError   the whole call ran past its deadline
    │   ├── AmbiguousCreateError      a create was sent but its outcome is unknown
    │   ├── APIResponseError          an answer that is not what the spec says
    │   │   ├── NotAGatewayError          an HTML (or other) page: wrong base URL or path
    │   │   └── ResponseTooLargeError     an answer past the size cap
    │   ├── APIStatusError            an HTTP error status, from either gateway error shape
    │   │   ├── BadRequestError           400
    │   │   │   └── TaskNotFoundError     400 task_not_exist
    │   │   ├── AuthenticationError       401
    │   │   ├── PermissionDeniedError     403
    │   │   │   └── InsufficientBalanceError  403 insufficient_user_quota / quota_not_enough
    │   │   ├── NotFoundError             404
    │   │   ├── RateLimitError            429
    │   │   ├── ServerError               5xx
    │   │   └── UpstreamError             Kling's own answer passed through by the gateway
    │   │       ├── UpstreamBadRequestError   (also a BadRequestError)
    │   │       ├── UpstreamRateLimitError    (also a RateLimitError)
    │   │       └── UpstreamServerError       (also a ServerError)
    │   └── DownloadError             a video download that fails verification
    ├── TaskFailedError               the task ended in failure
    └── WaitTimeoutError              wait() gave up before the task finished

No message, str() or repr() here ever contains the API token: server text is passed
through `_text.clean` (token, escape sequences and control characters removed) before
it reaches an error, and values are shortened. What each error means for "may I send
this again?" is decided in one place, `outcomes.classify`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

# a value is quoted the same way in every message; validation, manifest and the CLI
# import these from here
from ._text import MISSING as MISSING
from ._text import glimpse
from ._text import shorten as shorten

if TYPE_CHECKING:
    from .tasks import Task

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "DeadlineExceededError",
    "DownloadError",
    "ImageError",
    "InsufficientBalanceError",
    "JournalError",
    "KlingError",
    "ManifestError",
    "MissingExtraError",
    "NotAGatewayError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseTooLargeError",
    "ServerError",
    "TaskFailedError",
    "TaskLogError",
    "TaskNotFoundError",
    "UpstreamBadRequestError",
    "UpstreamError",
    "UpstreamRateLimitError",
    "UpstreamServerError",
    "Violation",
    "WaitTimeoutError",
]

class KlingError(Exception):
    """Base of every error this package raises."""


# --------------------------------------------------------------------- input


class ConfigurationError(KlingError, ValueError):
    """The client cannot be used as configured (no token, insecure base URL, ...)."""


class MissingExtraError(ConfigurationError, ImportError):
    """Fitting images needs Pillow (and pillow-heif for HEIC): the `images` extra."""

    extra = "kling-i2v[images]"

    def __init__(self, what: str = "fitting an image") -> None:
        super().__init__(f"{what} needs the optional dependencies: pip install '{self.extra}'")


@attrs.frozen
class Violation:
    """One broken rule: where, which rule, and the value found there."""

    path: str
    """`multi_prompt[2].duration`, or `(request)` for rules about the whole body."""
    rule: str
    value: Any = attrs.field(repr=lambda v: shorten(v))
    allowed_by: str | None = attrs.field(default=None, kw_only=True)
    """create()'s keyword that lets this value through anyway (`allow_unknown_model`)."""
    hint: str | None = attrs.field(default=None, kw_only=True)
    """What else to try (`did you mean 'duration'?`), if anything."""

    def __str__(self) -> str:
        got = "missing" if self.value is MISSING else f"got {shorten(self.value)}"
        # a rule that names its field ("prompt is required unless ...") is not prefixed with it
        named = self.rule.startswith(f"{self.path} ")
        text = f"{self.rule} ({got})" if named else f"{self.path}: {self.rule} ({got})"
        return f"{text}; {self.next_step()}" if self.next_step() else text

    def next_step(self, *, cli: bool = False) -> str:
        """What to do about it, in the library's or the command line's words ("" if nothing)."""
        if not self.allowed_by:
            return self.hint or ""
        how = "--" + self.allowed_by.replace("_", "-") if cli else f"{self.allowed_by}=True"
        return f"to send it anyway, pass {how}"


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

    def _repr_html_(self) -> str:  # Jupyter: the problems as a list
        from ._html import validation_html

        return validation_html(self)


class ImageError(KlingError, ValueError):
    """A local image breaks the upstream rules (format, size, sides, aspect ratio)."""

    def __init__(self, source: str, rule: str, value: Any) -> None:
        self.source = source
        self.rule = rule
        self.value = value
        super().__init__(f"{source}: {rule} (got {value})")


_MAX_PROBLEMS = 20


class ManifestError(KlingError, ValueError):
    """The manifest (or folder) cannot be run: every problem found, with where it is."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = list(self.problems[:_MAX_PROBLEMS])
        if len(self.problems) > _MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - _MAX_PROBLEMS} more")
        count = len(self.problems)
        lines = "".join(f"\n  {p}" for p in shown)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}:{lines}")


class JournalError(KlingError):
    """The journal cannot be used: locked by another run, missing, damaged, or foreign."""


class TaskLogError(JournalError):
    """The task log cannot be read or written (or the journal vanished under a run)."""


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


class DeadlineExceededError(APITimeoutError):
    """The whole call (every attempt, every read, every retry wait) ran past its deadline.

    httpx's timeouts bound each single read; a server that sends one byte a second never
    trips them. The deadline bounds the call as a whole."""

    def __init__(self, operation: str, deadline: float, *, request_sent: bool = True) -> None:
        self.operation = operation
        self.deadline = deadline
        super().__init__(
            f"the {operation} call did not finish within its deadline of {deadline:g}s "
            "(the server answered too slowly, or retries used up the time)",
            request_sent=request_sent,
        )


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


class NotAGatewayError(APIResponseError):
    """An answer that is not the gateway's JSON at all, typically an HTML page.

    new-api answers unknown routes with its web UI, HTTP 200 text/html
    (gateway-facts.md, "Routes": router/web-router.go NoRoute), so a wrong base URL or
    path shows up as a web page, not as a 404."""

    def __init__(self, *, status_code: int, content_type: str, base_url: str, body: str = "") -> None:
        self.content_type = content_type
        self.base_url = base_url
        kind = content_type.split(";", 1)[0].strip() or "untyped"
        # the advice once (the CLI adds only where to change it); the page as a glimpse
        super().__init__(
            f"HTTP {status_code}: the answer is a {kind} page ({glimpse(body)}), not the "
            f"gateway's JSON: check the base URL ({base_url}): it must be the gateway's root, "
            "without /v1 or /kling, and not a web site or a proxy",
            status_code=status_code,
            body=body,
        )


class ResponseTooLargeError(APIResponseError):
    """An answer larger than the client's cap (after decompression); it was not read."""

    def __init__(self, *, status_code: int, limit: int, what: str = "answer") -> None:
        self.limit = limit
        super().__init__(
            f"HTTP {status_code}: the {what} is larger than {limit:,} bytes; reading stopped "
            f"there (raise max_response_bytes if such answers are expected)",
            status_code=status_code,
        )


class DownloadError(APIError):
    """A video download that fails verification: an empty, cut, oversized or non-video
    body. Nothing is left under the target file name.

    `retryable` is True when the same URL may well work on the next try (a cut body), and
    False when the server sent something that is not a video."""

    def __init__(self, message: str, *, url: str, retryable: bool = False) -> None:
        self.url = url
        self.retryable = retryable
        super().__init__(f"download from {url} failed: {message}")


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
        json_declared: bool = False,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        self.shape = shape
        """`gateway` ({"error": ...}, routing and auth), `task` ({"code", "message"}) or `other`."""
        self.json_declared = json_declared
        """Whether the answer said it was JSON (Content-Type), as the gateway's always do."""
        detail = f" [{code}]" if code else ""
        # new-api's gateway-shape messages already end in "(request id: X)"
        # (common.MessageWithRequestId, gateway-facts.md "Errors"): say it once
        rid = f" (request id: {request_id})" if request_id and request_id not in message else ""
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


class InsufficientBalanceError(PermissionDeniedError):
    """403 `insufficient_user_quota` (older new-api: `quota_not_enough`): the account has
    too little balance. The gateway checks the balance before it creates anything, so
    nothing was created and nothing charged (gateway-facts.md, "Errors" and "Billing")."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(
            "the account balance is too low for this request: top up the anyfast.ai "
            f"balance and send it again (nothing was created or charged): {message}",
            **kwargs,
        )


class NotFoundError(APIStatusError):
    """404: unknown route or resource."""


class RateLimitError(APIStatusError):
    """429: rate, quota or upstream concurrency limit."""


class ServerError(APIStatusError):
    """5xx: the gateway or the upstream failed."""


_UPSTREAM_WORDS = {
    "do_request_failed": "the gateway could not reach the upstream video service (Kling)",
    "task_failed": "the upstream video service (Kling) refused the task",
}


class UpstreamError(APIStatusError):
    """The gateway passing through the upstream's (Kling's) answer: `fail_to_fetch_task`
    (Kling answered non-200; its status and raw body are passed on), `do_request_failed`
    (Kling could not be reached), `task_failed` (Kling answered 200 with a non-zero code).
    See gateway-facts.md, "Errors". A 401 or 404 here is Kling's, about the gateway's own
    upstream account: it does not mean the user's API token is wrong."""

    def __init__(self, message: str, *, status_code: int, code: str | None = None,
                 **kwargs: Any) -> None:
        words = _UPSTREAM_WORDS.get(
            code or "",
            f"the upstream video service (Kling) answered HTTP {status_code} through the "
            "gateway; this is its answer, not a problem with your API token",
        )
        super().__init__(f"{words}: {message}", status_code=status_code, code=code, **kwargs)


class UpstreamBadRequestError(UpstreamError, BadRequestError):
    """400 `task_failed` (and a Kling 400 passed on): a BadRequestError too."""


class UpstreamRateLimitError(UpstreamError, RateLimitError):
    """A Kling 429 passed on (Kling codes 1302-1304): a RateLimitError too."""


class UpstreamServerError(UpstreamError, ServerError):
    """500 `do_request_failed`, or a Kling 5xx passed on: a ServerError too. (A Kling 401,
    403 or 404 is an UpstreamError only: it must not read as the user's bad token.)"""


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
