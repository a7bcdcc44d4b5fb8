"""A fake task's life, on a simulated clock.

The gateway shows a task as new-api does (gateway-facts.md "Query"): `NOT_START` right
after the submit, with Kling's submit reply in `data` (not null) until its first poll of
the upstream; then Kling's `submitted` (SUBMITTED), `processing` (IN_PROGRESS), and
`succeed` or `failed` (SUCCESS / FAILURE). Progress moves in new-api's steps, 0 %, 10 %,
30 % and 100 % (`relay/channel/task/taskcommon/helpers.go`; 20 % belongs to QUEUED,
which Kling never reports). The shares of the lifecycle spent in each phase are the
fake's: new-api polls Kling every 15 s, which a fast test clock would only slow down.

Markers in the prompt (or in any `multi_prompt[].prompt`) configure one task:

    [fake:fail]              the task ends in FAILURE ("Failure to pass the risk control system")
    [fake:fail=REASON]       the task ends in FAILURE with REASON as fail_reason / task_status_msg
    [fake:seconds=N]         the lifecycle lasts N simulated seconds (0: finished at once)

Time is the client's clock protocol (`kling_i2v.polling.Clock`: monotonic() and sleep()),
so one `SimulatedClock` can drive both the client's waiting and the fake's tasks. A
`ScaledClock` runs `scale` times faster than the wall clock; a `ManualClock` moves only
when `advance()` (or its sleep()) is called. Timestamps are unix time on that clock.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from typing import Any

import attrs

from ..polling import Clock
from .dialect import Dialect

__all__ = [
    "DEFAULT_FAIL_REASON",
    "FakeTask",
    "ManualClock",
    "MarkerError",
    "Phase",
    "ScaledClock",
    "SimTime",
    "parse_markers",
]

DEFAULT_FAIL_REASON = "Failure to pass the risk control system"
# where each phase starts, as a share of the lifecycle (the outcome starts at 1.0)
_STARTS = {"NOT_START": 0.0, "SUBMITTED": 0.1, "IN_PROGRESS": 0.2}


class MarkerError(ValueError):
    """A `[fake:...]` marker the fake does not understand."""


class ScaledClock:
    """Simulated time that runs `scale` times as fast as the wall clock."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.scale = scale
        self._start = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._start) * self.scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.scale)


class ManualClock:
    """Simulated time that stands still until `advance()` (or `sleep()`) moves it."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds

    sleep = advance


class SimTime:
    """Unix time on a `Clock`: the wall clock's time when made, moved by the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._epoch = time.time() - clock.monotonic()

    def now(self) -> float:
        return self._epoch + self.clock.monotonic()


class Phase(enum.StrEnum):
    """A task's state; the value is the gateway's status string (model/task.go@U)."""

    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"

    @property
    def upstream(self) -> str:
        """The upstream Kling `task_status` of this phase (gateway-facts "Query")."""
        return _UPSTREAM[self]

    @property
    def progress(self) -> str:
        """new-api's progress step for this phase (taskcommon/helpers.go)."""
        return _PROGRESS[self]

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCESS, Phase.FAILURE)


_UPSTREAM = {
    Phase.NOT_START: "submitted",  # what Kling's submit reply says
    Phase.SUBMITTED: "submitted",
    Phase.IN_PROGRESS: "processing",
    Phase.SUCCESS: "succeed",
    Phase.FAILURE: "failed",
}
_PROGRESS = {
    Phase.NOT_START: "0%",
    Phase.SUBMITTED: "10%",
    Phase.IN_PROGRESS: "30%",
    Phase.SUCCESS: "100%",
    Phase.FAILURE: "100%",
}

_MARKER = re.compile(r"\[fake:([a-z_]+)(?:=([^\]]*))?\]")


@attrs.frozen
class Markers:
    seconds: float | None = None
    fail_reason: str | None = None


def parse_markers(body: dict[str, Any]) -> Markers:
    """The `[fake:...]` markers in a create body's prompts."""
    texts = [body.get("prompt")]
    texts += [
        shot.get("prompt") for shot in body.get("multi_prompt") or [] if isinstance(shot, dict)
    ]
    seconds: float | None = None
    fail_reason: str | None = None
    for text in texts:
        for name, value in _MARKER.findall(text if isinstance(text, str) else ""):
            if name == "fail":
                fail_reason = value.strip() or DEFAULT_FAIL_REASON
            elif name == "seconds":
                try:
                    seconds = float(value)
                except ValueError:
                    raise MarkerError(f"[fake:seconds={value}]: not a number") from None
                if not 0 <= seconds < 1e9:
                    raise MarkerError(f"[fake:seconds={value}]: must be >= 0")
            else:
                raise MarkerError(
                    f"unknown marker [fake:{name}]; known: fail, fail=REASON, seconds=N"
                )
    return Markers(seconds, fail_reason)


@attrs.define
class FakeTask:
    """One task the fake gateway accepted, with everything it will report about it."""

    task_id: str
    """The gateway's id: what create returns and queries use."""
    upstream_id: str
    """Kling's own id (data.data.data.task_id, and in callbacks); equal to task_id unless
    the dialect has public task ids."""
    body: dict[str, Any]
    """The create request's JSON body, as received."""
    model: str
    created_at: float
    """Simulated unix seconds."""
    seconds: float
    """Length of the whole lifecycle in simulated seconds."""
    video_url: str
    video_duration: str
    dialect: Dialect
    fail_reason: str | None = None
    """None: the task succeeds."""
    request_id: str = ""
    """Kling's request_id of the submit reply."""
    number: int = 0
    """The gateway's database row id (TaskDto@U `id`)."""
    action: str = ""
    """TaskDto `action` (see Dialect.action)."""

    @property
    def external_task_id(self) -> str | None:
        value = self.body.get("external_task_id")
        return value if isinstance(value, str) else None

    @property
    def callback_url(self) -> str | None:
        value = self.body.get("callback_url")
        return value if isinstance(value, str) else None

    @property
    def outcome(self) -> Phase:
        """Where the task ends: Phase.SUCCESS or Phase.FAILURE (equal to "SUCCESS" / "FAILURE")."""
        return Phase.SUCCESS if self.fail_reason is None else Phase.FAILURE

    def started_at(self, phase: Phase) -> float:
        share = 1.0 if phase.finished else _STARTS[phase]
        return self.created_at + self.seconds * share

    def phase_at(self, now: float) -> Phase:
        for phase in (self.outcome, Phase.IN_PROGRESS, Phase.SUBMITTED):
            if now >= self.started_at(phase):
                return phase
        return Phase.NOT_START

    def upstream_task(self, phase: Phase) -> dict[str, Any]:
        """The upstream Kling task object as it is in `phase` (also the callback's body).

        Kling's reply (gateway-facts "Query"): task_id, task_status, task_status_msg,
        task_info.external_task_id, created_at / updated_at in milliseconds, and on success
        task_result.videos[] with id, url and duration.
        """
        task: dict[str, Any] = {
            "task_id": self.upstream_id,
            "task_status": phase.upstream,
            "task_status_msg": (self.fail_reason or "") if phase is Phase.FAILURE else "",
            "task_info": {}
            if self.external_task_id is None
            else {"external_task_id": self.external_task_id},
            "created_at": _ms(self.created_at),
            "updated_at": _ms(self.started_at(phase)),
        }
        if phase is Phase.SUCCESS:
            task["task_result"] = {
                "videos": [
                    {
                        "id": f"{self.upstream_id}-0",
                        "url": self.video_url,
                        "duration": self.video_duration,
                    }
                ]
            }
        return task

    def gateway_task(self, now: float) -> dict[str, Any]:
        """The gateway's task record (TaskDto, `GatewayTask` in the spec) at time `now`."""
        phase = self.phase_at(now)
        fail_reason = ""
        if phase is Phase.FAILURE:
            fail_reason = self.fail_reason or ""
        elif phase is Phase.SUCCESS and self.dialect.video_url_in_fail_reason:
            fail_reason = self.video_url  # service/task_polling.go@O
        record: dict[str, Any] = {
            "task_id": self.task_id,
            "action": self.action,
            "status": phase.value,
            "fail_reason": fail_reason,
            "submit_time": int(self.created_at),
            "start_time": int(self.started_at(Phase.SUBMITTED)) if phase is not Phase.NOT_START
            else 0,
            "finish_time": int(self.started_at(phase)) if phase.finished else 0,
            "progress": phase.progress,
            # before its first poll the gateway holds Kling's submit reply (gateway-facts)
            "data": {
                "code": 0,
                "message": "SUCCEED",
                "request_id": self.request_id,
                "data": self.upstream_task(phase),
            },
        }
        if self.dialect.u_fields:
            # TaskDto@U's added fields; the values of user_id, group, channel_id, quota and
            # platform are made up (only their presence is known)
            result_url = self.video_url if phase is Phase.SUCCESS else fail_reason
            record.update(
                id=self.number,
                created_at=int(self.created_at),
                updated_at=int(max(self.created_at, self.started_at(phase))),
                platform="kling",
                user_id=1,
                group="default",
                channel_id=1,
                quota=0,
                properties={},
                result_url=result_url,  # model/task.go@U GetResultURL: else fail_reason
            )
        return record


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
