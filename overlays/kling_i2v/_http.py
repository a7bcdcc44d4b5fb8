"""What the sync and async clients share about HTTP: the token, reading answers, and
deciding whether a failure may be retried.

Creating a task costs money, so the create call is retried only when the request
certainly created nothing: the connection was never made, the gateway said 429, or
it answered 503 in its own routing-error shape (no channel was chosen). Everything
else after the body may have been sent raises AmbiguousCreateError instead.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import random
import time
from typing import Any, Literal, TypeVar

import attrs
import httpx

from .errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskNotFoundError,
    shorten,
)

__all__ = ["DEFAULT_TIMEOUT", "Operation", "RetryPolicy"]

log = logging.getLogger("kling_i2v")

_E = TypeVar("_E", bound=BaseException)

Operation = Literal["create", "query", "download"]

# connect short (a dead host is found fast), read/write generous: a 10 MB image upload
# on a slow link and a busy gateway both take a while.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)

_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_REQUEST_ID_HEADERS = ("x-request-id", "x-oneapi-request-id", "request-id", "x-trace-id")


@attrs.frozen
class RetryPolicy:
    """Capped exponential backoff with jitter; a Retry-After header wins when present."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    """A longer Retry-After than this is cut to it."""

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to sleep before retry number `attempt` (1-based)."""
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after)
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** (attempt - 1))
        # "equal jitter": never less than half the step, so retries still back off
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def is_retryable(error: BaseException, operation: Operation) -> bool:
    if isinstance(error, APIStatusError):
        if operation != "create":
            return error.status_code in _RETRYABLE_STATUS
        return error.status_code == 429 or (error.status_code == 503 and error.shape == "gateway")
    if isinstance(error, APIConnectionError):
        return operation != "create" or not error.request_sent
    return False


def log_retry(operation: Operation, attempt: int, policy: RetryPolicy, error: BaseException,
              delay: float) -> None:
    log.info(
        "retrying %s after %s (retry %d of %d) in %.2fs",
        operation, _describe(error), attempt, policy.max_retries, delay,
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__


# --------------------------------------------------------------------- the token


@functools.lru_cache(maxsize=64)  # asked on every request (BearerAuth); ipaddress is slow
def is_loopback(host: str) -> bool:
    # Only names that cannot go to DNS: `x.localhost` and `localhost.localdomain` reach the
    # system resolver, which (glibc without systemd-resolved) may ask a DNS server for them.
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth(httpx.Auth):
    """Adds the token, only to requests for the gateway's own origin, and never over
    plain http to anything but loopback. The token is kept out of every repr."""

    __slots__ = ("__token", "_origin")

    def __init__(self, token: str, base_url: httpx.URL) -> None:
        self.__token = token
        self._origin = (base_url.scheme, base_url.host, base_url.port)

    def auth_flow(self, request: httpx.Request) -> Any:
        url = request.url
        if (url.scheme, url.host, url.port) == self._origin:
            check_secure(url)
            request.headers["Authorization"] = f"Bearer {self.__token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"

    def scrub(self, error: _E) -> _E:
        """`error` with the token blanked wherever the server put it: some gateways quote
        the key they refuse ("Incorrect API key provided: sk-...")."""
        token = self.__token
        for name in ("message", "body"):
            value = getattr(error, name, None)
            if isinstance(value, str) and token in value:
                setattr(error, name, value.replace(token, "***"))
        error.args = tuple(a.replace(token, "***") if isinstance(a, str) else a for a in error.args)
        return error


def check_secure(url: httpx.URL) -> None:
    if url.scheme != "https" and not is_loopback(url.host):
        raise ConfigurationError(
            f"refusing to send the API token over {url.scheme}:// to {url.host}: "
            "use https (plain http is allowed only for loopback addresses)"
        )


# --------------------------------------------------------------------- answers


def transport_error(
    error: httpx.RequestError, operation: Operation, external_task_id: str | None
) -> APIError:
    """Our error for an httpx transport failure; for a create, ambiguous unless the
    request certainly never left."""
    never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    result: APIError
    if operation == "create" and not never_sent:
        result = AmbiguousCreateError(
            f"the create request was sent but no answer came back ({what}); "
            "the task may exist",
            external_task_id=external_task_id,
        )
    elif isinstance(error, httpx.TimeoutException):
        result = APITimeoutError(f"timed out talking to the gateway ({what})", request_sent=not never_sent)
    else:
        result = APIConnectionError(f"connection to the gateway failed ({what})", request_sent=not never_sent)
    result.external_task_id = external_task_id
    return result


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or APIResponseError naming what came instead."""
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise APIResponseError(
            f"HTTP {response.status_code}: the body is not valid JSON ({type(exc).__name__}: "
            f"{shorten(str(exc), 80)}; content type "
            f"{response.headers.get('content-type', 'none')}): {_snippet(response)}",
            status_code=response.status_code,
            body=_snippet(response),
        ) from exc


def malformed(response: httpx.Response, what: str, error: BaseException) -> APIResponseError:
    return APIResponseError(
        f"HTTP {response.status_code}: the gateway's answer is not a valid {what} "
        f"({type(error).__name__}: {shorten(str(error), 120)}): {_snippet(response)}",
        status_code=response.status_code,
        body=_snippet(response),
    )


def _snippet(response: httpx.Response) -> str:
    try:
        text = response.text
    # UnicodeError, not only UnicodeDecodeError: a utf-16 charset on a body without a BOM
    except (httpx.ResponseNotRead, UnicodeError, LookupError):
        return "<unreadable body>"
    text = " ".join(text.split())
    return text[:200] + ("…" if len(text) > 200 else "") if text else "<empty body>"


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def status_error(response: httpx.Response, external_task_id: str | None = None) -> APIError:
    """The error for a non-2xx answer, read from either gateway error shape."""
    from kling_i2v_api.models import GatewayErrorBody, TaskErrorBody
    from kling_i2v_api.types import Unset

    status = response.status_code
    message = f"{response.reason_phrase or 'error'}: {_snippet(response)}"
    code: str | None = None
    error_type: str | None = None
    request_id: str | None = None
    shape = "other"
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        try:
            if isinstance(data.get("error"), dict):
                gateway = GatewayErrorBody.from_dict(data).error
                message = gateway.message
                code = None if isinstance(gateway.code, Unset) or gateway.code is None else str(gateway.code)
                error_type = None if isinstance(gateway.type_, Unset) else gateway.type_
                shape = "gateway"
            elif "code" in data:
                task = TaskErrorBody.from_dict(data)
                code = task.code
                message = "" if isinstance(task.message, Unset) else task.message
                shape = "task"
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a body in neither shape: keep the generic message
        if isinstance(data.get("request_id"), str):
            request_id = data["request_id"]
    for header in _REQUEST_ID_HEADERS:
        if request_id is None and header in response.headers:
            request_id = response.headers[header]

    if status < 400:
        result: APIError = APIResponseError(
            f"HTTP {status}: unexpected answer: {_snippet(response)}", status_code=status
        )
    else:
        cls = _STATUS_CLASSES.get(status, ServerError if status >= 500 else APIStatusError)
        if cls is BadRequestError and code == "task_not_exist":
            cls = TaskNotFoundError
        result = cls(
            str(message) if message else (response.reason_phrase or "error"),
            status_code=status,
            code=code,
            error_type=error_type,
            request_id=request_id,
            body=_snippet(response),
            retry_after=retry_after(response.headers.get("retry-after")),
            shape=shape,
        )
    result.external_task_id = external_task_id
    return result


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # noqa: PLC0415  (rare, and ~10 ms of every import)

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_kling_error(error: BaseException) -> bool:
    return isinstance(error, KlingError)
