"""What the sync and async clients share about HTTP: the token, reading answers into
tasks or errors, and the retry schedule.

Whether a failure is retried, and whether a create that failed may have made a task, is
not decided here: `outcomes.classify` is the one rule for both clients and the batch.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import random
import time
from typing import Any

import attrs
import httpx

from ._text import clean
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
    InsufficientBalanceError,
    KlingError,
    NotAGatewayError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskNotFoundError,
    UpstreamBadRequestError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    shorten,
)
from .outcomes import Operation

__all__ = ["DEFAULT_TIMEOUT", "Operation", "RetryPolicy"]

log = logging.getLogger("kling_i2v")



# connect short (a dead host is found fast), read/write generous: a 10 MB image upload
# on a slow link and a busy gateway both take a while.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)

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
        self.apply(request)
        yield request

    def apply(self, request: httpx.Request) -> None:
        """The token, on `request` if it is for the gateway (also used by _send.Direct)."""
        url = request.url
        if (url.scheme, url.host, url.port) == self._origin:
            check_secure(url)
            request.headers["Authorization"] = f"Bearer {self.__token}"

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


def check_secure(url: httpx.URL) -> None:
    if url.scheme != "https" and not is_loopback(url.host):
        raise ConfigurationError(
            f"refusing to send the API token over {url.scheme}:// to {url.host}: "
            "use https (plain http is allowed only for loopback addresses)"
        )


# --------------------------------------------------------------------- failures


def transport_error(error: httpx.RequestError, external_task_id: str | None) -> APIError:
    """Our error for an httpx transport failure. `request_sent` is False only when the
    request certainly never left (no connection was made); whether that makes a create
    ambiguous is for `outcomes.classify` to say."""
    never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    # httpx's texts quote hosts and URLs, never headers; cleaned all the same
    what = clean(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    result: APIError
    if isinstance(error, httpx.TimeoutException):
        result = APITimeoutError(f"timed out talking to the gateway ({what})", request_sent=not never_sent)
    elif (plain := _plain_os_error(error)) is not None:
        result = APIConnectionError(f"connection to the gateway failed: {plain}", request_sent=not never_sent)
    else:
        result = APIConnectionError(f"connection to the gateway failed ({what})", request_sent=not never_sent)
    result.external_task_id = external_task_id
    return result


def _plain_os_error(error: BaseException) -> str | None:
    """The system's own words for the OSError under an httpx error, without "[Errno 111]":
    httpx raises `ConnectError(...) from httpcore.ConnectError from OSError`, and the async
    client's "All connection attempts failed" has the refused connect one link further down
    (seen on httpx 0.28 / anyio 4). A host name that is not found is a socket.gaierror."""
    import os
    import socket

    link: BaseException | None = error
    for _ in range(8):  # the chain is short; a bound all the same
        if link is None:
            return None
        if isinstance(link, socket.gaierror):
            return "the host name was not found (check its spelling)"
        if isinstance(link, OSError) and isinstance(link.errno, int) and link.errno > 0:
            # the errno's own words: asyncio's strerror is "Connect call failed (...)"
            words = os.strerror(link.errno)
            return clean(words[:1].lower() + words[1:])
        link = link.__cause__ or link.__context__
    return None


def ambiguous(error: BaseException, external_task_id: str | None) -> AmbiguousCreateError:
    """The error a create raises when `classify` found its outcome ambiguous."""
    if isinstance(error, AmbiguousCreateError):
        return error
    if isinstance(error, APIConnectionError):
        what = f"the create request was sent but no answer came back ({error.message})"
    elif isinstance(error, KlingError):
        what = f"the create request was sent but the answer does not say whether a task was made ({error})"
    else:
        what = f"the create request may have been sent when an unexpected error occurred ({type(error).__name__})"
    return AmbiguousCreateError(f"{what}; the task may exist", external_task_id=external_task_id)


# --------------------------------------------------------------------- answers


class Reader:
    """Turns answers into tasks or errors. Every piece of server text it puts into an
    error goes through `_text.clean` first: the token, escape sequences and control
    characters are gone before anything can be raised, logged or stored."""

    __slots__ = ("_secrets", "base_url")

    def __init__(self, base_url: str, secrets: tuple[str, ...]) -> None:
        self.base_url = base_url
        self._secrets = secrets

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def __repr__(self) -> str:
        return f"Reader(base_url={self.base_url!r})"

    def clean(self, text: str) -> str:
        return clean(text, secrets=self._secrets)

    def snippet(self, response: httpx.Response) -> str:
        """The start of the body as one line of clean text, for messages; built from a
        bounded prefix, so a 64 MB page costs no more than a short one."""
        try:
            raw = response.content[:_SNIPPET_BYTES * 4]
        except httpx.ResponseNotRead:
            return "<unread body>"
        charset = response.charset_encoding or "utf-8"
        try:
            text = raw.decode(charset, "replace")
        except LookupError:
            text = raw.decode("utf-8", "replace")
        text = " ".join(self.clean(text).split())
        if not text:
            return "<empty body>"
        cut = len(text) > _SNIPPET_CHARS or len(response.content) > len(raw)
        return text[:_SNIPPET_CHARS] + ("…" if cut else "")

    def json(self, response: httpx.Response) -> Any:
        """The parsed JSON body, or an error naming what came instead: NotAGatewayError
        for a web page (gf Routes: unknown routes answer 200 text/html), APIResponseError
        for anything else that is not JSON."""
        content_type = response.headers.get("content-type", "")
        try:
            return json.loads(response.content)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
            # JSON first, whatever the label: a readable task id is worth more than a
            # correct Content-Type (losing it would make a paid create ambiguous)
            if "html" in content_type.lower() or response.content[:64].lstrip()[:1] == b"<":
                raise self.not_a_gateway(response) from None
            # `from None`: a JSONDecodeError holds the whole document, token included
            raise APIResponseError(
                f"HTTP {response.status_code}: the body is not valid JSON ({type(exc).__name__}: "
                f"{shorten(self.clean(str(exc)), 80)}; content type "
                f"{self.clean(content_type)[:80] or 'none'}): {self.snippet(response)}",
                status_code=response.status_code,
                body=self.snippet(response),
            ) from None

    def not_a_gateway(self, response: httpx.Response) -> NotAGatewayError:
        return NotAGatewayError(
            status_code=response.status_code,
            content_type=self.clean(response.headers.get("content-type", ""))[:80],
            base_url=self.base_url,
            body=self.snippet(response),
        )

    def malformed(self, response: httpx.Response, what: str, error: BaseException) -> APIResponseError:
        return APIResponseError(
            f"HTTP {response.status_code}: the gateway's answer is not a valid {what} "
            f"({type(error).__name__}: {shorten(self.clean(str(error)), 120)}): {self.snippet(response)}",
            status_code=response.status_code,
            body=self.snippet(response),
        )

    def status_error(self, response: httpx.Response, external_task_id: str | None = None) -> APIError:
        """The error for a non-2xx answer, read from either gateway error shape."""
        status = response.status_code
        shape, code, error_type, message, request_id = _error_fields(response.content)
        message = self.clean(message) if message else ""
        code = self.clean(code)[:80] if code else None
        error_type = self.clean(error_type)[:80] if error_type else None
        for header in _REQUEST_ID_HEADERS:
            if request_id is None and header in response.headers:
                request_id = response.headers[header]
        request_id = self.clean(request_id)[:120] if request_id else None
        body = self.snippet(response)
        if shape == "other":
            message = f"{self.clean(response.reason_phrase or 'error')}: {body}"

        result: APIError
        if status < 400:
            where = response.headers.get("location")
            to = f" to {shorten(self.clean(where), 120)}" if where else ""
            result = APIResponseError(
                f"HTTP {status}: unexpected answer{to} (redirects are not followed, so the "
                f"token stays with {self.base_url}): {body}",
                status_code=status,
            )
        else:
            cls = _status_class(status, code, shape)
            result = cls(
                message or (response.reason_phrase or "error"),
                status_code=status,
                code=code,
                error_type=error_type,
                request_id=request_id,
                body=body,
                retry_after=retry_after(response.headers.get("retry-after")),
                shape=shape,
                json_declared="json" in response.headers.get("content-type", "").lower(),
            )
        result.external_task_id = external_task_id
        return result


_SNIPPET_CHARS = 200
_SNIPPET_BYTES = 1024

_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}
# gf Errors: the codes with which the gateway passes the upstream's answer on.
_UPSTREAM_CODES = frozenset({"fail_to_fetch_task", "do_request_failed", "task_failed"})
# gf Errors: "insufficient account balance | 403 | insufficient_user_quota (O: quota_not_enough)"
_BALANCE_CODES = frozenset({"insufficient_user_quota", "quota_not_enough"})


def _status_class(status: int, code: str | None, shape: str) -> type[APIStatusError]:
    if shape != "other" and code in _BALANCE_CODES:
        return InsufficientBalanceError
    if shape != "other" and code in _UPSTREAM_CODES:
        if status == 400:
            return UpstreamBadRequestError
        if status == 429:
            return UpstreamRateLimitError
        return UpstreamServerError if status >= 500 else UpstreamError
    if status == 400 and code == "task_not_exist":
        return TaskNotFoundError
    return _STATUS_CLASSES.get(status, ServerError if status >= 500 else APIStatusError)


def _error_fields(content: bytes) -> tuple[str, str | None, str | None, str, str | None]:
    """(shape, code, type, message, request_id) from either gateway error shape
    (gf Errors: `{"error": {"message", "type", "code"}}` or `{"code", "message", "data"}`);
    shape "other" when the body is neither."""
    from kling_i2v_api.models import GatewayErrorBody, TaskErrorBody
    from kling_i2v_api.types import Unset

    # Strictly as the gateway writes it: new-api answers its errors with gin's c.JSON
    # (e.g. middleware/auth.go@U and relay/relay_task.go@U, the files gateway-facts.md
    # "Errors" cites), that is Go's encoding/json: UTF-8 without a byte order mark, an
    # object first (RFC 8259 8.1: senders "MUST NOT add a byte order mark"). json.loads(bytes) would also take a BOM or UTF-16, which no
    # gateway sends; an error answer in them is not identified as the gateway's, so a
    # create is not sent again after it (issue 11: only the gateway's own word counts).
    try:
        text = content.decode("utf-8")
        data = json.loads(text) if text.lstrip(" \t\r\n")[:1] == "{" else None
    except (ValueError, RecursionError):
        return "other", None, None, "", None
    if not isinstance(data, dict):
        return "other", None, None, "", None
    request_id = data.get("request_id") if isinstance(data.get("request_id"), str) else None
    if data.get("code") == "success":
        # the success envelope of a query (gf Query: {"code": "success", "message": "",
        # "data": TaskDto}) under an error status: nobody's error shape, and its data may
        # name a task
        return "other", None, None, "", request_id
    try:
        if isinstance(data.get("error"), dict):
            gateway = GatewayErrorBody.from_dict(data).error
            if not isinstance(gateway.message, str):
                raise TypeError("message")
            code = None if isinstance(gateway.code, Unset) or gateway.code is None else str(gateway.code)
            kind = None if isinstance(gateway.type_, Unset) else str(gateway.type_)
            return "gateway", code, kind, gateway.message, request_id
        if isinstance(data.get("code"), str):
            task = TaskErrorBody.from_dict(data)
            message = "" if isinstance(task.message, Unset) else str(task.message)
            return "task", task.code, None, message, request_id
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return "other", None, None, "", request_id


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())
