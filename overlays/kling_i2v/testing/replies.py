"""The answers the fake gateway sends, in the shapes new-api writes them.

Two JSON error shapes (gateway-facts.md "Errors"):

- the gateway shape `{"error": {"message", "type", "code"}}` of new-api's middleware
  (`abortWithOpenAiMessage` in middleware/utils.go: type "new_api_error", the message
  ending in " (request id: ...)" by `common.MessageWithRequestId`);
- the task shape `{"code", "message", "data"}` of the task relay (`dto.TaskError`,
  written by controller/relay.go `respondTaskError`, which also rewrites every 429's
  message to "当前分组上游负载已饱和，请稍后再试").

Every response carries `X-Oneapi-Request-Id` (new-api's RequestId middleware; the header
name is `common.RequestIdKey`).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import attrs

__all__ = [
    "INDEX_HTML",
    "REQUEST_ID_HEADER",
    "SATURATED",
    "Reply",
    "gateway_error",
    "kling_body",
    "model_not_found",
    "not_found",
    "quota_message",
    "status_reply",
    "task_error",
    "web_page",
]

REQUEST_ID_HEADER = "X-Oneapi-Request-Id"
# controller/relay.go respondTaskError (QuantumNous/new-api): every 429 of the task relay
SATURATED = "当前分组上游负载已饱和，请稍后再试"
# router/web-router.go NoRoute serves the dashboard's index.html; ours is a stand-in
INDEX_HTML = (
    b'<!doctype html><html lang="en"><head><meta charset="UTF-8" />'
    b"<title>New API</title></head><body><div id=\"root\"></div></body></html>"
)


@attrs.define
class Reply:
    status: int
    payload: Any = None
    content: bytes | None = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = attrs.Factory(dict)

    def encoded(self) -> bytes:
        if self.content is not None:
            return self.content
        return json.dumps(self.payload, ensure_ascii=False).encode()

    def report_status(self, value: str) -> None:
        """Make a create reply, or a query reply's task, say its status is `value`."""
        if isinstance(self.payload, dict):
            data = self.payload.get("data")
            task = data if isinstance(data, dict) else self.payload
            if "status" in task:
                task["status"] = value


def gateway_error(status: int, message: str, request_id: str, code: str = "") -> Reply:
    """middleware/utils.go abortWithOpenAiMessage: type new_api_error, code "" unless given."""
    return Reply(
        status,
        {"error": {"message": f"{message} (request id: {request_id})", "type": "new_api_error",
                   "code": code}},
    )


def task_error(status: int, code: str, message: str) -> Reply:
    """dto.TaskError as controller/relay.go writes it (`data` is null for these errors)."""
    if status == 429:
        message = SATURATED
    return Reply(status, {"code": code, "message": message, "data": None})


def kling_body(code: int, message: str, request_id: str) -> str:
    """An upstream Kling error body (gateway-facts "Query": `{"code", "message",
    "request_id"}`), which new-api passes on verbatim as a `fail_to_fetch_task` message."""
    return json.dumps({"code": code, "message": message, "request_id": request_id})


def model_not_found(model: str, request_id: str) -> Reply:
    """503 `model_not_found` (middleware/distributor.go@U; the wording is
    i18n/locales/en.yaml distributor.no_available_channel)."""
    return gateway_error(
        503,
        f"No available channel for model {model} under group default (distributor)",
        request_id,
        "model_not_found",
    )


def not_found(method: str, path: str) -> Reply:
    """controller/relay.go RelayNotFound: the 404 for unknown paths under /v1 and /api."""
    return Reply(404, {"error": {"message": f"Invalid URL ({method} {path})",
                                 "type": "invalid_request_error", "param": "", "code": ""}})


def web_page() -> Reply:
    """router/web-router.go NoRoute: any other unknown route is the web UI, 200 text/html."""
    return Reply(200, content=INDEX_HTML, content_type="text/html; charset=utf-8",
                 headers={"Cache-Control": "no-cache"})


def status_reply(status: int, request_id: str, quota_code: str, model: str) -> Reply:
    """What new-api answers with `status` when something goes wrong (the fault controls).

    401: middleware/auth.go, gateway shape "Invalid token". 403: the billing refusal in
    the dialect's code. 429: a saturated upstream (task shape, no Retry-After). 500:
    `do_request_failed` (calling Kling failed). 503: `model_not_found` (no channel). Any
    other status: Kling answered it and new-api passes it on as `fail_to_fetch_task` with
    Kling's raw body as the message (relay/relay_task.go@U); 400 is new-api's own
    `invalid_request` (relay/common/relay_utils.go@U).
    """
    if status == 401:
        return gateway_error(401, "Invalid token", request_id)
    if status == 403:
        return task_error(403, quota_code, quota_message(quota_code))
    if status == 429:
        return task_error(429, "fail_to_fetch_task", SATURATED)
    if status == 500:
        return task_error(500, "do_request_failed",
                          'Post "https://api-singapore.klingai.com/v1/videos/image2video": '
                          "context deadline exceeded (fake fault)")
    if status == 503:
        return model_not_found(model, request_id)
    if status == 400:
        return task_error(400, "invalid_request", "invalid request (fake fault)")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return task_error(status, "fail_to_fetch_task",
                      kling_body(5000, f"{phrase} (fake fault)", request_id))


def quota_message(quota_code: str) -> str:
    if quota_code == "quota_not_enough":
        return "user quota is not enough"  # relay/relay_task.go@O
    # service/pre_consume_quota.go@U (the amount is formatted by logger.FormatQuota; the
    # currency sign depends on the site's display setting)
    return "用户额度不足, 剩余额度: ＄0.000000"
