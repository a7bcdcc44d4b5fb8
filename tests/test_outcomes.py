"""The one classifier: literal answers, as the gateway (or something else) writes them,
and what each means for a create, a query and a download.

The answers are parsed by the client's own reader, so these rows pin the whole path
from bytes to outcome; tests/test_client_wire.py drives the same rules over loopback.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kling_i2v import (
    AmbiguousCreateError,
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    DeadlineExceededError,
    DownloadError,
    ImageError,
    InsufficientBalanceError,
    NotAGatewayError,
    Outcome,
    RequestValidationError,
    ResponseTooLargeError,
    TaskFailedError,
    UpstreamError,
    Violation,
    classify,
)
from kling_i2v._http import Reader
from kling_i2v.outcomes import RULES, is_gateway_answer

R, P, A, X, F, Z = (Outcome.RETRY, Outcome.PAUSE, Outcome.AMBIGUOUS, Outcome.REFUSED,
                    Outcome.FAILED, Outcome.FATAL)
JSON = {"content-type": "application/json; charset=utf-8"}
HTML = {"content-type": "text/html; charset=utf-8"}
reader = Reader("https://www.anyfast.ai", ("sk-secret",))


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> BaseException:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.Response(status, headers=JSON if headers is None else headers, content=content,
                              request=httpx.Request("POST", "https://www.anyfast.ai/kling/v1/x"))
    return reader.status_error(response)


def gateway(status: int, code: str | None, message: str = "m") -> BaseException:
    return answer(status, {"error": {"message": message, "type": "new_api_error", "code": code}})


def task(status: int, code: str, message: str = "m") -> BaseException:
    return answer(status, {"code": code, "message": message, "data": None})


# (error, create, query, download): one line per row of gf's error table, and per kind
# of answer that is not the gateway's
CASES = [
    # the gateway's own answers (gateway-facts.md, Errors)
    (gateway(401, None, "Invalid token (request id: x)"), Z, Z, F),
    (gateway(400, None, "Model name not specified"), F, F, F),
    (gateway(503, "model_not_found"), P, R, R),
    (gateway(400, None, "Invalid request: invalid JSON request body"), F, F, F),
    (task(400, "invalid_request", "prompt is required"), F, F, F),
    (task(403, "insufficient_user_quota"), Z, Z, Z),
    (task(403, "quota_not_enough"), Z, Z, Z),
    (task(500, "build_request_failed"), X, R, R),
    (task(500, "do_request_failed"), R, R, R),
    (task(401, "fail_to_fetch_task", '{"code":1002,"message":"auth failed"}'), Z, Z, Z),
    (task(404, "fail_to_fetch_task", '{"code":1201}'), F, F, F),
    (task(429, "fail_to_fetch_task", '{"code":1303}'), P, P, R),
    (task(502, "fail_to_fetch_task", "bad gateway"), R, R, R),
    (task(400, "task_failed", "content policy"), F, F, F),
    (task(400, "task_not_exist"), F, F, F),
    (gateway(429, None, "当前分组上游负载已饱和，请稍后再试"), P, P, R),
    (task(429, "rate_limit", "当前分组上游负载已饱和，请稍后再试"), P, P, R),
    (gateway(404, "", "Invalid URL (POST /kling/v1/x)"), Z, Z, F),
    (task(500, "some_new_code"), R, R, R),  # any task-shaped 500: refunded (Billing)
    # answers that are not the gateway's: nothing proven for a create
    (answer(502, b"<html>bad gateway</html>", HTML), A, R, R),
    (answer(500, b"oops", {"content-type": "text/plain"}), A, R, R),
    (answer(403, b"<html>forbidden</html>", HTML), A, F, F),
    (answer(404, b"", {}), A, F, F),
    (answer(302, b"", {"location": "https://login.example/"}), A, R, F),
    (answer(503, {"code": "x", "message": "m"}), A, R, R),  # task shape, status not in the table
    (answer(500, {"code": "x", "message": "m"}, {"content-type": "text/plain"}), A, R, R),
    (answer(429, b"slow down", {"content-type": "text/plain"}), A, R, R),
    # the gateway's words in a form it never writes (Go's encoding/json: UTF-8, no BOM),
    # or the success envelope (gf Query) under an error status: not its error answers
    (answer(500, b"\xef\xbb\xbf" + json.dumps({"code": "do_request_failed", "message": "m"}).encode()),
     A, R, R),
    (answer(503, json.dumps({"error": {"message": "m", "code": "model_not_found"}}).encode("utf-16")),
     A, R, R),
    (answer(500, {"code": "success", "message": "", "data": {"task_id": "1", "status": "QUEUED"}}),
     A, R, R),
    (answer(429, {"code": "success", "message": "", "data": None}), A, R, R),
    # transport
    (APIConnectionError("refused", request_sent=False), R, R, R),
    (APITimeoutError("connect timeout", request_sent=False), R, R, R),
    (APIConnectionError("reset"), A, R, R),
    (APITimeoutError("read timeout"), A, R, R),
    (DeadlineExceededError("create", 3.0), A, R, R),
    (DeadlineExceededError("create", 3.0, request_sent=False), X, R, R),
    # raised by the client's own checks
    (NotAGatewayError(status_code=200, content_type="text/html", base_url="https://x"), A, Z, F),
    (ResponseTooLargeError(status_code=200, limit=10), A, F, F),
    (DownloadError("cut", url="https://cdn/x.mp4", retryable=True), F, R, R),
    (DownloadError("not a video", url="https://cdn/x.mp4"), F, F, F),
    (RequestValidationError([Violation("mode", "one of std, pro", "x")]), F, F, F),
    (ImageError("cat.png", "at least 300 px", "200 px"), F, F, F),
    (ConfigurationError("no token"), Z, Z, Z),
    (AmbiguousCreateError("lost", external_task_id="e"), A, A, A),
    (OSError(28, "No space left on device"), A, Z, Z),
    (RuntimeError("a bug"), A, Z, Z),
]


@pytest.mark.parametrize(("error", "create", "query", "download"), CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_each_answer_has_one_meaning_per_operation(
    error: BaseException, create: Outcome, query: Outcome, download: Outcome
) -> None:
    assert (classify("create", error), classify("query", error), classify("download", error)) == (
        create, query, download)


def test_a_model_the_spec_does_not_list_fails_on_model_not_found_instead_of_pausing() -> None:
    # new-api: 503 model_not_found, "no channel serves the model" (gateway-facts Errors).
    # For a listed model that is a channel down for a while: every create waits. For an
    # unlisted one (sent with allow_unknown_model) the gateway may not have it at all.
    error = gateway(503, "model_not_found", "No available channel for model kling-v9")
    assert classify("create", error, model_listed=False) is F
    assert classify("create", error, model_listed=True) is P
    assert classify("create", error) is P  # listed unless said otherwise
    assert classify("query", error, model_listed=False) is R  # only a create is judged so
    # nothing else changes for an unlisted model: still ambiguous, still fatal, still paused
    assert classify("create", answer(502, b"<html>", HTML), model_listed=False) is A
    assert classify("create", task(403, "insufficient_user_quota"), model_listed=False) is Z
    assert classify("create", gateway(429, None), model_listed=False) is P
    # only model_not_found: any other 503 is an outage, waited out whatever the model
    assert classify("create", gateway(503, None, "busy"), model_listed=False) is P


def test_a_create_is_retried_only_when_the_gateway_itself_said_nothing_was_created() -> None:
    for error, create, *_ in CASES:
        if create in (R, P, X, F, Z) and hasattr(error, "status_code") and error.status_code >= 300:
            assert is_gateway_answer(error), f"{error!r} is not the gateway's own answer"


def test_the_gateway_shape_counts_only_when_declared_as_json() -> None:
    body = {"error": {"message": "Invalid token", "type": "new_api_error"}}
    assert classify("create", answer(401, body)) is Z
    assert classify("create", answer(401, json.dumps(body).encode(), {"content-type": "text/html"})) is A


def test_task_failures_and_balance_have_their_own_classes() -> None:
    balance = task(403, "insufficient_user_quota", "user quota is not enough")
    assert isinstance(balance, InsufficientBalanceError)
    assert "top up" in str(balance) and "nothing was created" in str(balance)
    upstream = task(401, "fail_to_fetch_task", '{"code":1002}')
    assert isinstance(upstream, UpstreamError) and "not a problem with your API token" in str(upstream)
    assert classify("query", TaskFailedError.__new__(TaskFailedError)) is F


def test_every_rule_cites_where_it_comes_from() -> None:
    for rule in RULES:
        assert len(rule.source) > 20, rule
