"""A fake task's life, on a simulated clock.

A task is SUBMITTED for the first tenth of its lifecycle, then IN_PROGRESS with a
progress that rises with time ("10%" ... "99%"), then SUCCESS or FAILURE. The lifecycle
lasts 10 simulated seconds unless the gateway or the prompt says otherwise.

Markers in the prompt (or in any `multi_prompt[].prompt`) configure one task:

    [fake:fail]              the task ends in FAILURE ("Failure to pass the risk control system")
    [fake:fail=REASON]       the task ends in FAILURE with REASON as fail_reason / task_status_msg
    [fake:seconds=N]         the lifecycle lasts N simulated seconds (0: finished at once)

Simulated time is unix seconds: a `ScaledClock` runs `scale` times faster than the wall
clock from the moment it is made; a `ManualClock` moves only when `advance()` is called.
Every timestamp the fake reports is simulated time, so they stay consistent at any speed.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from typing import Any, Protocol

import attrs

__all__ = [
    "DEFAULT_FAIL_REASON",
    "Clock",
    "FakeTask",
    "ManualClock",
    "MarkerError",
    "Phase",
    "ScaledClock",
    "parse_markers",
]

DEFAULT_FAIL_REASON = "Failure to pass the risk control system"
SUBMITTED_SHARE = 0.1  # share of the lifecycle spent SUBMITTED before the upstream picks it up


class MarkerError(ValueError):
    """A `[fake:...]` marker the fake does not understand."""


class Clock(Protocol):
    def now(self) -> float:
        """Simulated unix seconds."""
        ...


class ScaledClock:
    """Simulated time that runs `scale` times as fast as the wall clock."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.scale = scale
        self._epoch = time.time()
        self._start = time.monotonic()

    def now(self) -> float:
        return self._epoch + (time.monotonic() - self._start) * self.scale


class ManualClock:
    """Simulated time that stands still until `advance()` moves it."""

    def __init__(self) -> None:
        self._now = time.time()
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds


class Phase(enum.StrEnum):
    """A task's state; the value is the gateway's status string."""

    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"

    @property
    def upstream(self) -> str:
        """The upstream Kling `task_status` of this phase."""
        return _UPSTREAM[self]

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCESS, Phase.FAILURE)


_UPSTREAM = {
    Phase.SUBMITTED: "submitted",
    Phase.IN_PROGRESS: "processing",
    Phase.SUCCESS: "succeed",
    Phase.FAILURE: "failed",
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
    body: dict[str, Any]
    """The create request's JSON body, as received."""
    model: str
    created_at: float
    """Simulated unix seconds."""
    seconds: float
    """Length of the whole lifecycle in simulated seconds."""
    video_url: str
    video_duration: str
    fail_reason: str | None = None
    """None: the task succeeds."""
    request_id: str = ""

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
        if phase is Phase.SUBMITTED:
            return self.created_at
        if phase is Phase.IN_PROGRESS:
            return self.created_at + self.seconds * SUBMITTED_SHARE
        return self.created_at + self.seconds

    def phase_at(self, now: float) -> Phase:
        if now >= self.started_at(self.outcome):
            return self.outcome
        if now >= self.started_at(Phase.IN_PROGRESS):
            return Phase.IN_PROGRESS
        return Phase.SUBMITTED

    def progress_at(self, now: float) -> int:
        phase = self.phase_at(now)
        if phase.finished:
            return 100
        if phase is Phase.SUBMITTED:
            return 0
        share = (now - self.created_at) / self.seconds
        return max(1, min(99, int(share * 100)))

    def upstream_task(self, phase: Phase) -> dict[str, Any]:
        """The upstream Kling task object as it is in `phase` (also the callback's body)."""
        task: dict[str, Any] = {
            "task_id": self.task_id,
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
                        "id": f"{self.task_id}-0",
                        "url": self.video_url,
                        "duration": self.video_duration,
                    }
                ]
            }
        return task

    def gateway_task(self, now: float) -> dict[str, Any]:
        """The gateway's task record (`GatewayTask`) at simulated time `now`."""
        phase = self.phase_at(now)
        started = phase is not Phase.SUBMITTED
        return {
            "task_id": self.task_id,
            "action": "image2video",
            "status": phase.value,
            "fail_reason": (self.fail_reason or "") if phase is Phase.FAILURE else "",
            "submit_time": int(self.created_at),
            "start_time": int(self.started_at(Phase.IN_PROGRESS)) if started else 0,
            "finish_time": int(self.started_at(phase)) if phase.finished else 0,
            "progress": f"{self.progress_at(now)}%",
            # the gateway shows the upstream reply only once it has polled the upstream
            "data": None
            if not started
            else {
                "code": 0,
                "message": "SUCCEED",
                "request_id": self.request_id,
                "data": self.upstream_task(phase),
            },
        }


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
