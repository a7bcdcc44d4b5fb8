"""The one rule for "what does this failure mean, and may the request be sent again?".

`classify(operation, error, model_listed=True)` answers for every failure of every call. KlingClient,
AsyncKlingClient and the batch all decide with it; nothing else in the package judges
an error's meaning for retries or money.

    RETRY      sending the same request again is safe and may well work
    PAUSE      the gateway is rate limiting: everyone using it should wait, then retry
    AMBIGUOUS  (create) the task may exist and may be billed: never send it again blindly
    REFUSED    (create) the gateway made nothing; send again later, not in a tight loop
    FAILED     this request (this row, this task) will not work as it is
    FATAL      nothing will work until the user acts (token, balance, base URL)

For a create, every outcome except AMBIGUOUS means that no task was created. That may
only be concluded from an answer positively identified as the gateway's own: one of its
two JSON error shapes, sent as JSON, with a status from the error table of
gateway-facts.md. The gateway pre-charges, refunds every submit that ends in an error and
records no task ("Billing": relay/relay_task.go@U). Anything else (a redirect, an HTML
page, an unrecognised body, a reset, a timeout after the request went out, a bug) proves
nothing either way, so it is AMBIGUOUS ("An answer that is not the gateway's ... proves
nothing either way").

The table is read top to bottom; the first row whose test holds decides. Each row gives
the outcome for create, query and download, and where the rule comes from. "gf" is
/work/shared/reference/gateway-facts.md (shipped beside the project as
../shared/reference/gateway-facts.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Literal

import attrs

from .errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    DownloadError,
    ImageError,
    InsufficientBalanceError,
    JournalError,
    KlingError,
    ManifestError,
    NotAGatewayError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseTooLargeError,
    TaskFailedError,
    TaskNotFoundError,
    UpstreamError,
    WaitTimeoutError,
)

__all__ = ["RULES", "Operation", "Outcome", "Rule", "classify", "is_gateway_answer"]

Operation = Literal["create", "query", "download"]


class Outcome(enum.StrEnum):
    RETRY = "retry"
    PAUSE = "pause"
    AMBIGUOUS = "ambiguous"
    REFUSED = "refused"
    FAILED = "failed"
    FATAL = "fatal"

    @property
    def retried_by_client(self) -> bool:
        """Whether KlingClient's own retry loop sends the request again."""
        return self in (Outcome.RETRY, Outcome.PAUSE)


R, P, A, X, F, Z = (Outcome.RETRY, Outcome.PAUSE, Outcome.AMBIGUOUS, Outcome.REFUSED,
                    Outcome.FAILED, Outcome.FATAL)

# Statuses the error table of gf lists for the gateway's own answers, per shape, plus 404 and 501 of
# new-api's controller/relay.go (RelayNotFound: 404 {"error": {"message": "Invalid URL
# (POST /v1/...)", "type": "invalid_request_error"}}; RelayNotImplemented: 501
# api_not_implemented), read in QuantumNous/new-api. A fail_to_fetch_task carries Kling's
# status, whatever it is, so UpstreamError is recognised by its code instead.
_TABLE_STATUSES = {
    "gateway": frozenset({400, 401, 403, 404, 429, 501, 503}),
    "task": frozenset({400, 403, 429, 500}),
}


def is_gateway_answer(error: BaseException) -> bool:
    """An HTTP error positively identified as the gateway's own: a JSON body in one of
    its two shapes (gf "Errors": `{"error": {...}}` or `{"code", "message", "data"}`),
    declared as JSON, with a status from the error table (or an upstream pass-through,
    whose status is Kling's)."""
    if not isinstance(error, APIStatusError) or error.shape not in ("gateway", "task"):
        return False
    return error.json_declared and (
        isinstance(error, UpstreamError) or error.status_code in _TABLE_STATUSES[error.shape]
    )


def _unidentified(error: BaseException) -> bool:
    return isinstance(error, APIStatusError) and not is_gateway_answer(error)


def _transient_status(error: BaseException) -> bool:
    return isinstance(error, APIStatusError) and (error.status_code == 429 or error.status_code >= 500)


def _upstream(*codes: str, status: Callable[[int], bool] = lambda s: True) -> Callable[[BaseException], bool]:
    def test(error: BaseException) -> bool:
        return (isinstance(error, UpstreamError) and (error.code or "") in codes
                and status(error.status_code))
    return test


def _is(*classes: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda error: isinstance(error, classes)


def _never_sent(error: BaseException) -> bool:
    return isinstance(error, APIConnectionError) and not error.request_sent


@attrs.frozen
class Rule:
    test: Callable[[BaseException], bool]
    create: Outcome
    query: Outcome
    download: Outcome
    source: str
    create_unlisted: Outcome | None = None
    """The create's outcome instead, when the request's model_name is one the spec does
    not list (sent only because the caller allowed unknown models); None: as `create`."""


RULES: tuple[Rule, ...] = (
    # ------------------------------------------------------------- no answer at all
    Rule(_is(AmbiguousCreateError), A, A, A,
         "already judged ambiguous by the client (gf Create: 'proves nothing either way')"),
    Rule(lambda e: _never_sent(e) and isinstance(e, DeadlineExceededError), X, R, R,
         "deadline hit before the request left: nothing reached the gateway; no time is left "
         "in this call"),
    Rule(_never_sent, R, R, R,
         "connection refused / connect timeout / pool timeout: the request never left"),
    Rule(_is(APIConnectionError), A, R, R,
         "reset, timeout or deadline after sending: gf Create 'a reset, a timeout ... proves "
         "nothing either way'; reads are safe to repeat"),
    # --------------------------------------------------- answers that are not the gateway's
    Rule(_is(NotAGatewayError), A, Z, F,
         "HTML/other page: gf Routes 'Unknown routes ... fall to the web UI: HTTP 200, "
         "text/html' (wrong base URL); for a create it could also be a proxy in front of a "
         "gateway that did create the task"),
    Rule(_is(ResponseTooLargeError), A, F, F,
         "an answer past the size cap was not read: for a create its content is unknown"),
    Rule(_is(APIResponseError), A, R, F,
         "unreadable answer, redirect or 2xx without a task id: gf Create 'a redirect ... "
         "proves nothing'; a query is safe to read again"),
    Rule(lambda e: _unidentified(e) and _transient_status(e), A, R, R,
         "a 429 or 5xx whose body is not the gateway's JSON (a proxy's page): gf Create "
         "'An answer that is not the gateway's ... proves nothing either way'"),
    Rule(_unidentified, A, F, F,
         "any other error status that is not the gateway's JSON (a proxy's or a CDN's "
         "page, an expired signed video URL): same source"),
    # ------------------------------------------------ the gateway's own answers (gf Errors)
    Rule(_is(InsufficientBalanceError), Z, Z, Z,
         "403 insufficient_user_quota / quota_not_enough: gf Errors 'insufficient account "
         "balance'; nothing created (Billing)"),
    Rule(_upstream("fail_to_fetch_task", status=lambda s: s == 429), P, P, R,
         "fail_to_fetch_task carries Kling's status: gf Errors 'Kling answered non-200'; "
         "Kling 1302-1304 are rate/concurrency limits"),
    Rule(_upstream("fail_to_fetch_task", status=lambda s: s >= 500), R, R, R,
         "fail_to_fetch_task with Kling's 5xx: gf Errors; the gateway refunded (Billing)"),
    Rule(_upstream("fail_to_fetch_task", status=lambda s: s in (401, 403)), Z, Z, Z,
         "Kling refused the gateway's own upstream account: gf Errors 'so 401/404 can be "
         "Kling's, not the user's'; every request will be refused until the provider acts"),
    Rule(_upstream("do_request_failed"), R, R, R,
         "500 do_request_failed: gf Errors 'calling Kling failed'; refunded (Billing)"),
    Rule(_is(UpstreamError), F, F, F,
         "task_failed (Kling answered code != 0) and other Kling 4xx: gf Errors; Kling "
         "refused this request (bad parameter, content policy)"),
    Rule(lambda e: isinstance(e, APIStatusError) and e.code == "build_request_failed", X, R, R,
         "500 build_request_failed: gf Errors; the gateway could not build the upstream "
         "request, nothing was sent to Kling"),
    Rule(_is(RateLimitError), P, P, R,
         "429: gf Errors 'upstream group saturated' (no Retry-After) and the per-token "
         "concurrency gate; a CDN's 429 on a download is that host's, not the gateway's"),
    Rule(lambda e: (isinstance(e, APIStatusError) and e.status_code == 503
                    and e.code == "model_not_found"), P, R, R,
         "503 model_not_found: gf Errors 'no channel serves the model'; every request to "
         "the model waits. For a model the spec does not list, the gateway may simply not "
         "have it: that create fails (nothing was created, gf Billing) instead of holding "
         "back every other create. How long a missing channel lasts no source says: a "
         "judgement", create_unlisted=F),
    Rule(lambda e: isinstance(e, APIStatusError) and e.status_code == 503, P, R, R,
         "any other 503 in the gateway's shape: gf Errors lists 503 only as "
         "model_not_found; an outage is waited out, whatever the model"),
    Rule(lambda e: isinstance(e, APIStatusError) and e.status_code >= 500, R, R, R,
         "other gateway 5xx in its own shape: gf Billing, an error answer means no task"),
    Rule(_is(AuthenticationError), Z, Z, F,
         "401: gf Errors 'bad, expired or exhausted key' (middleware/auth.go@U)"),
    Rule(_is(PermissionDeniedError), Z, Z, F,
         "403: the token may not use this model or group (new-api TokenAuth/Distribute)"),
    Rule(_is(TaskNotFoundError), F, F, F,
         "400 task_not_exist: gf Errors 'unknown task id'"),
    Rule(_is(NotFoundError), Z, Z, F,
         "404 from the gateway: a wrong route; from a video host: the video is gone "
         "(gf Query 'Kling deletes videos after 30 days')"),
    Rule(_is(BadRequestError, APIStatusError), F, F, F,
         "400 and other 4xx in the gateway's shapes: gf Errors 'model_name missing', "
         "'invalid JSON body', 'invalid request'"),
    # ------------------------------------------------------------- raised by the client
    Rule(lambda e: isinstance(e, DownloadError) and e.retryable, F, R, R,
         "a cut video body (length short of Content-Length): the same URL may work again"),
    Rule(_is(DownloadError), F, F, F,
         "an empty, HTML, oversized or non-video body: not a video"),
    Rule(_is(RequestValidationError, ImageError, ManifestError), F, F, F,
         "refused before sending: nothing left the machine"),
    Rule(_is(TaskFailedError, WaitTimeoutError), F, F, F,
         "the task failed, or its wait ran out (the task may still finish: query it)"),
    Rule(_is(ConfigurationError, JournalError), Z, Z, Z,
         "no token, insecure base URL, unusable journal: nothing will work"),
    Rule(_is(OSError), A, Z, Z,
         "local I/O (disk full, permissions): a create's request may have gone out"),
    Rule(_is(KlingError), A, F, F,
         "any other error of ours: for a create, the request may have gone out"),
    Rule(lambda e: True, A, Z, Z,
         "not ours (a bug?): for a create, the request may have gone out"),
)


def classify(operation: Operation, error: BaseException, *, model_listed: bool = True) -> Outcome:
    """What `error`, raised by an `operation` call, means (see the module docstring).
    `model_listed=False`: the create's model_name is not in the spec's list."""
    for rule in RULES:
        if rule.test(error):
            if operation == "create" and not model_listed and rule.create_unlisted is not None:
                return rule.create_unlisted
            outcome: Outcome = getattr(rule, operation)
            return outcome
    raise AssertionError("the last rule matches everything")  # pragma: no cover
