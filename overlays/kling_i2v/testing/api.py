"""What the fake gateway answers, HTTP plumbing aside: routes, auth, create, query, files.

    POST <create path of openapi.yaml>             create (bearer token, checks in new-api's order)
    GET  <query path, any {action} segment>        query, any action (gateway-facts "Routes")
    GET  /files/{task_id}.mp4                      the finished task's video, no token (our CDN)
    any other path under /v1, /api, /assets        404 "Invalid URL (...)" (RelayNotFound)
    anything else                                  200 text/html, the web UI (web-router.go NoRoute)

A create goes through new-api's steps in its order (gateway-facts.md "Create" and
"Errors"): the token (401), the model name (400 gateway shape), a channel for the model
(503 `model_not_found`: a model the spec does not list has none), the prompt (400
`invalid_request`), the balance (403), then "Kling": the body against the spec (Kling
answers 400, passed on as `fail_to_fetch_task` with Kling's body) and the account's
running-task limit (Kling's 1303 as a 429, message rewritten by new-api, no Retry-After).
Where the order of two checks is not known, that order is ours.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

import attrs

from .assets import sample_video_bytes
from .dialect import Dialect
from .faults import Fault, Target
from .lifecycle import FakeTask, MarkerError, Phase, SimTime, parse_markers
from .replies import (
    Reply,
    gateway_error,
    kling_body,
    model_not_found,
    not_found,
    quota_message,
    status_reply,
    task_error,
    web_page,
)
from .spec import component, default_of, load_spec, violations

__all__ = ["CREATE_PATH", "FILES_PREFIX", "Api", "RecordedRequest", "fault_reply", "target_of"]


def _operation_path(operation_id: str) -> str:
    for path, item in load_spec()["paths"].items():
        if any(isinstance(op, dict) and op.get("operationId") == operation_id
               for op in item.values()):
            return str(path)
    raise LookupError(f"openapi.yaml has no operation {operation_id}")


CREATE_PATH = _operation_path("create_image_to_video")
# Go's unicode.IsSpace (pkg.go.dev/unicode#IsSpace), what strings.TrimSpace strips
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000")
# the query route's group: ".../videos/" of ".../videos/image2video/{task_id}"
QUERY_GROUP = _operation_path("get_image_to_video_task").rsplit("/", 2)[0] + "/"
FILES_PREFIX = "/files/"
# router/web-router.go: these prefixes get RelayNotFound's JSON 404, all else the web UI
_API_PREFIXES = ("/v1", "/api", "/assets")


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
    request_id: str = ""
    """The X-Oneapi-Request-Id answered."""


def _query_id(path: str) -> str | None:
    """The task id of a query path `<group><action>/<task_id>`, any action."""
    if not path.startswith(QUERY_GROUP):
        return None
    action, slash, raw_id = path[len(QUERY_GROUP) :].partition("/")
    if not action or not slash or not raw_id or "/" in raw_id:
        return None
    return unquote(raw_id)


def target_of(method: str, path: str) -> Target | None:
    if path == CREATE_PATH and method == "POST":
        return "create"
    if method == "GET" and _query_id(path) is not None:
        return "query"
    if path.startswith(FILES_PREFIX) and method in ("GET", "HEAD"):
        return "download"
    return None


def fault_reply(fault: Fault, request_id: str, dialect: Dialect) -> Reply:
    """The answer of a `status` or `body` fault."""
    if fault.kind == "body":
        return Reply(fault.http_status, content=fault.content, content_type=fault.content_type)
    reply = status_reply(fault.http_status, request_id, dialect.quota_code, _default_model())
    if fault.retry_after is not None:
        reply.headers["Retry-After"] = fault.retry_after
    return reply


def _default_model() -> str:
    return str(default_of("model_name") or component("ModelName")["enum"][0])


@attrs.define
class Limits:
    """The account's state at the gateway and at Kling, changed from any thread."""

    balance: int | None = None
    """Tasks the account can still pay for; None: unlimited."""
    max_running: int | None = None
    """Kling's per-account limit of tasks created but not finished; None: unlimited."""


class Api:
    """The gateway's state (tasks, recorded requests) and its answers. Thread-safe."""

    def __init__(
        self,
        tokens: Iterable[str],
        sim: SimTime,
        seed: int,
        task_seconds: float,
        dialect: Dialect,
        on_created: Callable[[FakeTask], None],
    ) -> None:
        self.tokens = tuple(tokens)
        self.time = sim
        self.task_seconds = task_seconds
        self.dialect = dialect
        self.limits = Limits()
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

    def request_id(self) -> str:
        """common.GetTimeString() + GetRandomNumberString(8), as new-api makes them."""
        stamp = self.time.now()
        with self._lock:
            digits = "".join(self._ids.choices(string.digits, k=17))
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp)) + digits

    def running(self) -> int:
        """Tasks created but not finished, now."""
        now = self.time.now()
        return sum(1 for t in self.tasks.values() if not t.phase_at(now).finished)

    def dispatch(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, request_id: str
    ) -> Reply:
        """The answer to a request; `headers` has lower-case names."""
        if path == CREATE_PATH and method == "POST":
            return self._unauthorized(headers, request_id) or self._create(body, request_id)
        task_id = _query_id(path)
        if task_id is not None and method == "GET":
            return self._unauthorized(headers, request_id) or self._query(task_id)
        if path.startswith(FILES_PREFIX) and path.endswith(".mp4") and method in ("GET", "HEAD"):
            return self._download(unquote(path[len(FILES_PREFIX) : -len(".mp4")]))
        if path.startswith(_API_PREFIXES):
            return not_found(method, path)
        # gin answers a known path with another method through NoRoute too (no 405)
        return web_page()

    def _unauthorized(self, headers: Mapping[str, str], request_id: str) -> Reply | None:
        # middleware/auth.go TokenAuth: the key is the bearer token ("sk-" optional there;
        # exact match here); wording from i18n/locales/en.yaml token.invalid / not_provided
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.tokens:
            return None
        message = "Invalid token" if token.strip() else "Token not provided"
        return gateway_error(401, message, request_id)

    def _create(self, body: bytes, request_id: str) -> Reply:
        try:
            request = json.loads(body, parse_constant=_reject_constant)
        except ValueError:
            # middleware/distributor.go getModelFromJSONBody, i18n distributor.invalid_request
            return gateway_error(400, "Invalid request: invalid JSON request body", request_id)
        fields = request if isinstance(request, dict) else {}
        model = fields.get("model_name")
        if model is not None and not isinstance(model, str):
            # distributor.go getJSONStringValue (KlingRequestConvert copies model_name to model)
            return gateway_error(400, "Invalid request: field model must be a string", request_id)
        if not model or not model.strip():
            # distributor.go@U, i18n/locales/en.yaml distributor.model_name_required
            return gateway_error(
                400, "Model name not specified, model name cannot be empty", request_id
            )
        if model not in component("ModelName")["enum"]:
            return model_not_found(model, request_id)  # no channel serves a model not listed
        prompt = fields.get("prompt")
        prompt_optional = fields.get("multi_shot") is True and not self.dialect.prompt_always_required
        # relay_utils.go validatePrompt: `strings.TrimSpace(prompt) == ""` (new-api@0d158eb9)
        if (not isinstance(prompt, str) or not prompt.strip(GO_SPACE)) and not prompt_optional:
            return task_error(400, "invalid_request", "prompt is required")  # relay_utils.go@U
        problems = violations(request)
        try:
            markers = parse_markers(fields)
        except MarkerError as error:
            problems.append(f"prompt: {error}")
        with self._lock:
            if self.limits.balance is not None and self.limits.balance <= 0:
                # relay/relay_task.go: billing comes before Kling is called
                code = self.dialect.quota_code
                return task_error(403, code, quota_message(code))
        if problems:
            # Kling refuses bad parameters (its code 1201) with HTTP 400; new-api passes the
            # status and Kling's raw body on as fail_to_fetch_task (relay/relay_task.go@U)
            message = "invalid request: " + "; ".join(problems)
            return task_error(400, "fail_to_fetch_task", kling_body(1201, message, request_id))
        if self.limits.max_running is not None and self.running() >= self.limits.max_running:
            # Kling's 1303 (more tasks running than the package allows) is an HTTP 429;
            # new-api rewrites a 429's message and sends no Retry-After (gateway-facts)
            return task_error(429, "fail_to_fetch_task", "")
        task = self._new_task(fields, model, markers.seconds, markers.fail_reason)
        self._on_created(task)
        # relay/channel/task/kling/adaptor.go@U DoResponse: dto.NewOpenAIVideo()
        video = {
            "id": task.task_id,
            "task_id": task.task_id,
            "object": "video",
            "model": task.model,
            "status": "queued",
            "progress": 0,
            "created_at": int(task.created_at),
        }
        return Reply(200, video)

    def _new_task(
        self, body: dict[str, Any], model: str, seconds: float | None, fail_reason: str | None
    ) -> FakeTask:
        with self._lock:
            if self.limits.balance is not None:
                self.limits.balance -= 1
            upstream_id = self._unique(lambda: str(self._ids.randrange(10**17, 10**18)))
            task_id = upstream_id
            if self.dialect.public_task_ids:  # model.GenerateTaskID (from ba25ba88)
                alphabet = string.ascii_letters + string.digits
                task_id = self._unique(lambda: "task_" + "".join(self._ids.choices(alphabet, k=32)))
            task = FakeTask(
                task_id=task_id,
                upstream_id=upstream_id,
                body=body,
                model=model,
                created_at=self.time.now(),
                seconds=self.task_seconds if seconds is None else seconds,
                video_url=self.video_url(task_id),
                video_duration=body.get("duration") or default_of("duration"),
                dialect=self.dialect,
                fail_reason=fail_reason,
                request_id="".join(self._ids.choices(string.ascii_letters + string.digits, k=22)),
                number=len(self._tasks) + 1,
                action=self._action(body),
            )
            self._tasks[task_id] = task
        return task

    def _unique(self, make: Callable[[], str]) -> str:
        value = make()
        while value in self._tasks:
            value = make()
        return value

    def _action(self, body: Mapping[str, Any]) -> str:
        if self.dialect.action == "generate" and body.get("image_tail") and not body.get("image"):
            return "textGenerate"  # middleware/kling_adapter.go@U
        return self.dialect.action.format(path=CREATE_PATH)

    def _query(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return task_error(400, "task_not_exist", "task_not_exist")  # relay_task.go@U
        data = task.gateway_task(self.time.now())
        # relay/relay_task.go@U: the /kling routes wrap the TaskDto in this envelope
        return Reply(200, {"code": "success", "message": "", "data": data})

    def _download(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None or task.phase_at(self.time.now()) is not Phase.SUCCESS:
            return Reply(404, content=b"Not Found", content_type="text/plain")
        return Reply(200, content=sample_video_bytes(), content_type="video/mp4")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
