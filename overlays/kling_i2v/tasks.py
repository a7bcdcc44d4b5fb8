"""A task as users see it: one small status set, progress as an int, the video URLs.

The gateway speaks several status dialects (its own upper-case states, the upstream
Kling `task_status`, the create call's OpenAI-style `queued`), and the set is open.
`Task` folds them into five states; a spelling nobody has seen yet becomes `UNKNOWN`,
which `wait()` treats as "keep polling". The generated model stays available as `raw`.
"""

from __future__ import annotations

import enum
import math
import re
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from kling_i2v_api.models import TaskQueryResponse, VideoTask

__all__ = ["Task", "TaskStatus"]


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)

    @classmethod
    def parse(cls, text: object) -> TaskStatus:
        """Any gateway or upstream spelling, case-insensitive; unknown ones give UNKNOWN."""
        if not isinstance(text, str):
            return cls.UNKNOWN
        return _SPELLINGS.get(text.strip().lower(), cls.UNKNOWN)


# Spellings seen from new-api (TaskDto.status), the upstream Kling API (task_status)
# and the create reply; see gateway-facts.md.
_SPELLINGS = {
    "not_start": TaskStatus.QUEUED,
    "submitted": TaskStatus.QUEUED,
    "queued": TaskStatus.QUEUED,
    "in_progress": TaskStatus.RUNNING,
    "processing": TaskStatus.RUNNING,
    "running": TaskStatus.RUNNING,
    "success": TaskStatus.SUCCEEDED,
    "succeed": TaskStatus.SUCCEEDED,
    "succeeded": TaskStatus.SUCCEEDED,
    "completed": TaskStatus.SUCCEEDED,
    "failure": TaskStatus.FAILED,
    "failed": TaskStatus.FAILED,
    "unknown": TaskStatus.UNKNOWN,
}

_PERCENT = re.compile(r"^\s*(\d{1,3})(?:\.\d+)?\s*%?\s*$")


def parse_progress(value: object) -> int | None:
    """`"30%"`, `"30"`, `30` or `30.0` -> 30, clamped to 0..100; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # json.loads reads NaN and Infinity
    if isinstance(value, int | float):
        number = int(value)
    elif isinstance(value, str) and (match := _PERCENT.match(value)):
        number = int(match.group(1))
    else:
        return None
    return max(0, min(100, number))


def _task_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"task_id must be a non-empty string, got {value!r:.40}")
    return value


@attrs.frozen
class Task:
    """The state of one task at one moment."""

    task_id: str = attrs.field(converter=_task_id)
    status: TaskStatus
    progress: int = 0
    """0-100; 100 once succeeded, whatever the gateway said."""
    video_urls: tuple[str, ...] = ()
    fail_reason: str | None = None
    external_task_id: str | None = None
    gateway_status: str | None = None
    """The status string exactly as the gateway sent it."""
    raw: Any = attrs.field(default=None, repr=False, eq=False)
    """The generated model this was read from (`VideoTask` or `TaskQueryResponse`)."""

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def video_url(self) -> str | None:
        return self.video_urls[0] if self.video_urls else None

    def __str__(self) -> str:
        text = f"task {self.task_id}: {self.status.value} {self.progress}%"
        if self.fail_reason:
            text += f" ({self.fail_reason})"
        return text

    # ------------------------------------------------------------------ readers

    @classmethod
    def from_created(
        cls, created: VideoTask, *, external_task_id: str | None = None
    ) -> Task:
        status = created.status if isinstance(created.status, str) else "queued"
        progress = parse_progress(created.progress)
        return cls(
            task_id=created.task_id,
            status=TaskStatus.parse(status),
            progress=progress or 0,
            external_task_id=external_task_id,
            gateway_status=status,
            raw=created,
        )

    @classmethod
    def from_query(cls, reply: TaskQueryResponse) -> Task:
        from kling_i2v_api.types import Unset

        def present(value: Any) -> Any:
            return None if isinstance(value, Unset) else value

        gateway = reply.data
        upstream = present(gateway.data)
        kling = present(upstream.data) if upstream is not None else None

        status = TaskStatus.parse(gateway.status)
        upstream_status = present(kling.task_status) if kling is not None else None
        if status is TaskStatus.UNKNOWN:
            # The gateway's own word first; the upstream's when the gateway has none we know.
            status = TaskStatus.parse(upstream_status)

        urls: list[str] = []
        result = present(kling.task_result) if kling is not None else None
        for video in present(result.videos) or () if result is not None else ():
            url = present(video.url)
            if isinstance(url, str) and url:
                urls.append(url)
        result_url = present(gateway.result_url)
        if not urls and isinstance(result_url, str) and result_url:
            urls.append(result_url)

        reason = present(gateway.fail_reason) or None
        if reason is None and kling is not None and status is TaskStatus.FAILED:
            reason = present(kling.task_status_msg) or None
        info = present(kling.task_info) if kling is not None else None
        external = present(info.external_task_id) if info is not None else None

        progress = parse_progress(present(gateway.progress))
        if status is TaskStatus.SUCCEEDED:
            progress = 100
        return cls(
            task_id=gateway.task_id,
            status=status,
            progress=progress or 0,
            video_urls=tuple(urls),
            fail_reason=reason,
            external_task_id=external or None,
            gateway_status=gateway.status,
            raw=reply,
        )
