"""A task as users see it: one small status set, progress as an int, the video URLs.

The gateway speaks several status dialects (its own upper-case states, the upstream
Kling `task_status`, the create call's OpenAI-style `queued`), and the set is open.
`Task` folds them into five states; a spelling nobody has seen yet becomes `UNKNOWN`,
which `wait()` treats as "keep polling". The generated model stays available as `raw`.

Fields are read the way new-api writes them (gateway-facts.md, "Query"): `fail_reason`
only on a failed task (older versions put the video URL there on success), `result_url`
only on a succeeded task and only when it is an http(s) URL (newer versions fall back
to `fail_reason` there), the gateway's times in seconds and Kling's in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ._text import clean

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


# Spellings seen from new-api (TaskDto.status, model/task.go@U: NOT_START, SUBMITTED,
# QUEUED, IN_PROGRESS, SUCCESS, FAILURE, UNKNOWN), anyfast's docs (PROCESSING, FAILED),
# the upstream Kling API (task_status: submitted, processing, succeed, failed) and the
# create reply (dto.NewOpenAIVideo: queued); gateway-facts.md "Query" and "Create".
# "running", "succeeded", "completed" are OpenAI-video spellings (/v1/videos, gateway-
# facts.md "Other routes"), accepted in case anyfast's fork answers with them.
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


MAX_TASK_ID_CHARS = 256
"""Far above both id styles (gateway-facts.md "Create": Kling's 18-digit ids, or "task_"
+ 32 characters); a longer id from the server is refused, not put into a URL."""
_TASK_ID = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_TASK_ID_CHARS)


def check_task_id(value: object) -> str:
    """A task id as it may go into a URL path: printable ASCII, no spaces, not a dot
    segment ("." or ".." would send the query to another route), at most 256 chars."""
    if not isinstance(value, str) or not _TASK_ID.fullmatch(value) or value in (".", ".."):
        shown = f"{len(value)} characters" if isinstance(value, str) and len(value) > 60 else f"{value!r:.60}"
        raise ValueError(
            "a task id must be 1 to 256 printable ASCII characters without spaces "
            f"(and not '.' or '..'), got {shown}"
        )
    return value


def _http_url(value: object) -> str | None:
    """`value` if it is an absolute http(s) URL httpx can use, else None: result_url may
    hold a failure text (gateway-facts.md "Query": GetResultURL falls back to
    fail_reason), and a URL from the server is not trusted to parse."""
    if not isinstance(value, str) or len(value) > 8192:
        return None
    import httpx  # noqa: PLC0415  (already imported by the client; not by `import kling_i2v`)

    text = value.strip()
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    return text if url.scheme in ("http", "https") and url.host else None


def _seconds(value: object, *, unit: float = 1.0) -> dt.datetime | None:
    """A Unix time as an aware UTC datetime; 0 and nonsense are None (new-api leaves unset
    times at 0). `unit` is 1 for the gateway's seconds, 1000 for Kling's milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value / unit, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


@attrs.frozen
class Task:
    """The state of one task at one moment."""

    task_id: str = attrs.field(converter=check_task_id)
    """The gateway's task id: the one to query with."""
    status: TaskStatus
    progress: int = 0
    """0-100; 100 once succeeded, whatever the gateway said."""
    video_urls: tuple[str, ...] = ()
    fail_reason: str | None = None
    external_task_id: str | None = None
    gateway_status: str | None = None
    """The status string exactly as the gateway sent it (cleaned of control characters)."""
    upstream_task_id: str | None = None
    """Kling's own task id (`data.data.data.task_id`). Since new-api ba25ba88 it differs
    from `task_id`; callbacks carry it (gateway-facts.md "Query"). Never used to query."""
    submitted_at: dt.datetime | None = None
    """When the gateway took the task (its `submit_time`, or the create reply's
    `created_at`; both seconds)."""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    upstream_updated_at: dt.datetime | None = None
    """Kling's `updated_at` (milliseconds on the wire)."""
    warnings: tuple[str, ...] = ()
    """Capability warnings about the request that created this task (create() only)."""
    raw: Any = attrs.field(default=None, repr=False, eq=False)
    """The generated model this was read from (`VideoTask` or `TaskQueryResponse`)."""

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def video_url(self) -> str | None:
        return self.video_urls[0] if self.video_urls else None

    def _repr_html_(self) -> str:  # Jupyter: status, progress bar, the video once there
        from ._html import task_html

        return task_html(self)

    def __str__(self) -> str:
        text = f"task {self.task_id}: {self.status.value} {self.progress}%"
        if self.fail_reason:
            text += f" ({self.fail_reason})"
        return text

    # ------------------------------------------------------------------ readers

    @classmethod
    def from_created(
        cls, created: VideoTask, *, external_task_id: str | None = None,
        secrets: Iterable[str] = (), warnings: tuple[str, ...] = (),
    ) -> Task:
        status = created.status if isinstance(created.status, str) else "queued"
        progress = parse_progress(created.progress)
        return cls(
            task_id=created.task_id,
            status=TaskStatus.parse(status),
            progress=progress or 0,
            external_task_id=external_task_id,
            gateway_status=clean(status, secrets=secrets)[:64],
            submitted_at=_seconds(created.created_at),  # dto.NewOpenAIVideo: seconds
            warnings=warnings,
            raw=created,
        )

    @classmethod
    def from_query(cls, reply: TaskQueryResponse, *, secrets: Iterable[str] = ()) -> Task:
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
        if status is TaskStatus.SUCCEEDED:
            result = present(kling.task_result) if kling is not None else None
            for video in present(result.videos) or () if result is not None else ():
                url = _http_url(present(video.url))
                if url is not None:
                    urls.append(url)
            result_url = _http_url(present(gateway.result_url))
            if result_url is not None and result_url not in urls:
                urls.append(result_url)

        reason = None
        if status is TaskStatus.FAILED:
            text = present(gateway.fail_reason) or None
            if text is None and kling is not None:
                text = present(kling.task_status_msg) or None
            reason = clean(str(text), secrets=secrets)[:_MAX_REASON_CHARS] if text else None
        info = present(kling.task_info) if kling is not None else None
        external = present(info.external_task_id) if info is not None else None
        upstream_id = present(kling.task_id) if kling is not None else None

        progress = parse_progress(present(gateway.progress))
        if status is TaskStatus.SUCCEEDED:
            progress = 100
        return cls(
            task_id=gateway.task_id,
            status=status,
            progress=progress or 0,
            video_urls=tuple(urls),
            fail_reason=reason,
            external_task_id=_short_text(external, secrets),
            gateway_status=_short_text(gateway.status, secrets),
            upstream_task_id=_short_text(upstream_id, secrets),
            submitted_at=_seconds(present(gateway.submit_time)),
            started_at=_seconds(present(gateway.start_time)),
            finished_at=_seconds(present(gateway.finish_time)),
            upstream_updated_at=_seconds(present(kling.updated_at), unit=1000.0)
            if kling is not None else None,
            raw=reply,
        )


_MAX_REASON_CHARS = 2000


def _short_text(value: object, secrets: Iterable[str]) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        return None
    return clean(str(value), secrets=secrets)[:MAX_TASK_ID_CHARS] or None
