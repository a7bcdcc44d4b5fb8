"""What the fake gateway answers, HTTP plumbing aside: routes, auth, create, query, files.

    POST /kling/v1/videos/image2video            create (bearer token, body checked against the spec)
    GET  /kling/v1/videos/image2video/{task_id}  query (bearer token), the nested TaskDto reply
    GET  /files/{task_id}.mp4                    the finished task's video, no token (a CDN)

Errors use the gateway's two body shapes: `{"error": {"message", "type", "code"}}` for
auth and routing, `{"code", "message", "data"}` for task errors (gateway-facts.md).
"""

from __future__ import annotations

import json
import random
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import attrs

from .assets import sample_video_bytes
from .faults import Fault, Target
from .lifecycle import Clock, FakeTask, MarkerError, Phase, parse_markers
from .spec import component, violations

__all__ = ["CREATE_PATH", "FILES_PREFIX", "Api", "RecordedRequest", "Reply", "fault_reply"]

CREATE_PATH = "/kling/v1/videos/image2video"
QUERY_PREFIX = CREATE_PATH + "/"
FILES_PREFIX = "/files/"


@attrs.frozen
class RecordedRequest:
    """A request the fake received, and what it answered."""

    method: str
    path: str
    """Without the query string."""
    headers: dict[str, str]
    """Lower-case names; `authorization` is redacted to "Bearer ***"."""
    json: Any
    """The parsed JSON body, or None (no body, or not JSON)."""
    status: int
    """The HTTP status answered; 0 when the connection was closed without an answer."""
    fault: str | None
    """The kind of the fault applied (see `Fault`), or None."""
    target: Target | None = None
    """"create", "query", "download", or None for a route the API does not have."""
    received_at: float = 0.0
    """time.monotonic() when the request arrived."""


@attrs.define
class Reply:
    status: int
    payload: Any = None
    content: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = attrs.Factory(dict)

    def encoded(self) -> bytes:
        return self.content if self.content is not None else json.dumps(self.payload).encode()

    def report_status(self, value: str) -> None:
        """Make a create reply, or a query reply's task, say its status is `value`."""
        if isinstance(self.payload, dict):
            data = self.payload.get("data")
            task = data if isinstance(data, dict) else self.payload
            if "status" in task:
                task["status"] = value


def gateway_error(status: int, message: str, type_: str, code: str) -> Reply:
    return Reply(status, {"error": {"message": message, "type": type_, "code": code}})


def task_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message, "data": None})


def target_of(method: str, path: str) -> Target | None:
    if path == CREATE_PATH and method == "POST":
        return "create"
    if path.startswith(QUERY_PREFIX) and method == "GET":
        return "query"
    if path.startswith(FILES_PREFIX) and method in ("GET", "HEAD"):
        return "download"
    return None


def fault_reply(fault: Fault) -> Reply:
    """The answer of a `status` or `body` fault."""
    if fault.kind == "body":
        return Reply(fault.http_status, content=fault.content, content_type=fault.content_type)
    status = fault.http_status
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if status >= 500:
        reply = gateway_error(status, f"{phrase} (fake fault)", "upstream_error", f"http_{status}")
    elif status == 429:
        reply = task_error(429, "too_many_requests", "upstream is saturated (fake fault)")
    else:
        reply = task_error(status, f"http_{status}", f"{phrase} (fake fault)")
    if fault.retry_after is not None:
        reply.headers["Retry-After"] = fault.retry_after
    return reply


class Api:
    """The gateway's state (tasks, recorded requests) and its answers. Thread-safe."""

    def __init__(
        self,
        tokens: Iterable[str],
        clock: Clock,
        seed: int,
        task_seconds: float,
        on_created: Callable[[FakeTask], None],
    ) -> None:
        self.tokens = tuple(tokens)
        self.clock = clock
        self.task_seconds = task_seconds
        self.base_url = ""  # set once the server listens
        self._on_created = on_created
        self._ids = random.Random(seed)
        self._lock = threading.Lock()
        self._tasks: dict[str, FakeTask] = {}
        self._requests: list[RecordedRequest] = []

    @property
    def tasks(self) -> dict[str, FakeTask]:
        with self._lock:
            return dict(self._tasks)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def video_url(self, task_id: str) -> str:
        return f"{self.base_url}{FILES_PREFIX}{task_id}.mp4"

    def dispatch(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """The answer to a request; `headers` has lower-case names."""
        if path == CREATE_PATH:
            if method != "POST":
                return _method_not_allowed(method, path, "POST")
            return self._unauthorized(headers) or self._create(body)
        raw_id = path[len(QUERY_PREFIX) :] if path.startswith(QUERY_PREFIX) else ""
        if raw_id and "/" not in raw_id:
            if method != "GET":
                return _method_not_allowed(method, path, "GET")
            return self._unauthorized(headers) or self._query(unquote(raw_id))
        if path.startswith(FILES_PREFIX) and path.endswith(".mp4"):
            if method not in ("GET", "HEAD"):
                return _method_not_allowed(method, path, "GET, HEAD")
            return self._download(unquote(path[len(FILES_PREFIX) : -len(".mp4")]))
        return gateway_error(404, f"Invalid URL ({method} {path})", "invalid_request_error", "")

    def _unauthorized(self, headers: Mapping[str, str]) -> Reply | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.tokens:
            return None
        message = "Invalid token" if token.strip() else "No token provided (Authorization: Bearer)"
        return gateway_error(401, message, "invalid_request_error", "invalid_api_key")

    def _create(self, body: bytes) -> Reply:
        try:
            request = json.loads(body, parse_constant=_reject_constant)
        except ValueError as error:
            return task_error(400, "invalid_request", f"request body is not valid JSON: {error}")
        problems = violations(request)
        if problems:
            return task_error(400, "invalid_request", "invalid request: " + "; ".join(problems))
        try:
            markers = parse_markers(request)
        except MarkerError as error:
            return task_error(400, "invalid_request", f"invalid request: prompt: {error}")
        with self._lock:
            task_id = str(self._ids.randrange(10**17, 10**18))  # digit strings, like the real ones
            while task_id in self._tasks:
                task_id = str(self._ids.randrange(10**17, 10**18))
            task = FakeTask(
                task_id=task_id,
                body=request,
                model=request.get("model_name") or component("ModelName")["enum"][0],
                created_at=self.clock.now(),
                seconds=self.task_seconds if markers.seconds is None else markers.seconds,
                video_url=self.video_url(task_id),
                video_duration=request.get("duration") or component("Duration")["default"],
                fail_reason=markers.fail_reason,
                request_id="".join(self._ids.choices(string.ascii_letters + string.digits, k=22)),
            )
            self._tasks[task_id] = task
        self._on_created(task)
        video = {
            "id": task_id,
            "task_id": task_id,
            "object": "video",
            "model": task.model,
            "status": "queued",
            "progress": 0,
            "created_at": int(task.created_at),
        }
        return Reply(200, video)

    def _query(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return task_error(400, "task_not_exist", f"task_not_exist: {task_id}")
        data = task.gateway_task(self.clock.now())
        return Reply(200, {"code": "success", "message": "", "data": data})

    def _download(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None or task.phase_at(self.clock.now()) is not Phase.SUCCESS:
            return Reply(404, content=b"Not Found", content_type="text/plain")
        return Reply(200, content=sample_video_bytes(), content_type="video/mp4")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _method_not_allowed(method: str, path: str, allow: str) -> Reply:
    reply = gateway_error(
        405, f"Method {method} not allowed on {path}", "invalid_request_error", "method_not_allowed"
    )
    reply.headers["Allow"] = allow
    return reply
