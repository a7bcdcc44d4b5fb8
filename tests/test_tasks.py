"""Reading query answers the way new-api writes them (gateway-facts.md, "Query")."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from kling_i2v import Task, TaskStatus
from kling_i2v_api.models import TaskQueryResponse

from tests.conftest import load_data

TOKEN = "sk-test-token-0123456789"


def read(answer: dict[str, Any], **changes: Any) -> Task:
    answer = copy.deepcopy(answer)
    answer["data"].update(changes)
    return Task.from_query(TaskQueryResponse.from_dict(answer), secrets=(TOKEN,))


SUCCESS = load_data("query_success.json")
FAILURE = load_data("query_failure.json")
RUNNING = load_data("query_in_progress.json")


@pytest.mark.parametrize(
    ("status", "expected"),
    [("NOT_START", TaskStatus.QUEUED), ("SUBMITTED", TaskStatus.QUEUED), ("QUEUED", TaskStatus.QUEUED),
     ("IN_PROGRESS", TaskStatus.RUNNING), ("PROCESSING", TaskStatus.RUNNING),
     ("SUCCESS", TaskStatus.SUCCEEDED), ("FAILURE", TaskStatus.FAILED), ("FAILED", TaskStatus.FAILED),
     ("UNKNOWN", TaskStatus.RUNNING),  # the gateway does not know: Kling's own word (processing)
     ("SOMETHING_NEW", TaskStatus.RUNNING)],
)
def test_every_gateway_status_maps(status: str, expected: TaskStatus) -> None:
    answer = copy.deepcopy(SUCCESS)
    answer["data"]["data"]["data"]["task_status"] = "processing"
    assert read(answer, status=status).status is expected


def test_not_start_right_after_submit_holds_klings_submit_reply() -> None:
    # gateway-facts.md Query: NOT_START, "0%", data = Kling's submit reply (not null)
    answer = copy.deepcopy(SUCCESS)
    answer["data"]["data"]["data"] = {"task_id": "880001", "task_status": "submitted",
                                      "created_at": 1773130665123, "updated_at": 1773130665123}
    task = read(answer, status="NOT_START", progress="0%")
    assert (task.status, task.progress, task.upstream_task_id) == (TaskStatus.QUEUED, 0, "880001")


def test_fail_reason_is_read_only_for_failed_tasks() -> None:
    # up to new-api O the video URL is written into fail_reason on success
    url = "https://cdn.klingai.com/a1b2c3.mp4"
    assert read(SUCCESS, fail_reason=url).fail_reason is None
    assert read(RUNNING, fail_reason="something").fail_reason is None
    assert read(FAILURE).fail_reason == "Failure to pass the risk control system"


def test_result_url_is_a_video_only_when_succeeded_and_http() -> None:
    # new-api U: GetResultURL falls back to fail_reason, so a failed task's result_url is text
    failed = read(FAILURE, result_url="Failure to pass the risk control system")
    assert failed.video_urls == () and failed.video_url is None
    failed_with_url = read(FAILURE, result_url="https://cdn.example/x.mp4")
    assert failed_with_url.video_urls == ()
    answer = copy.deepcopy(SUCCESS)
    del answer["data"]["data"]["data"]["task_result"]
    assert read(answer, result_url="https://cdn.example/v.mp4").video_url == "https://cdn.example/v.mp4"
    for bad in ("task failed: quota", "javascript:alert(1)", "file:///etc/passwd", "http://[::1/x",
                "ftp://cdn/x.mp4"):
        assert read(answer, result_url=bad).video_urls == (), bad


def test_bad_video_urls_inside_klings_reply_are_dropped() -> None:
    answer = copy.deepcopy(SUCCESS)
    answer["data"]["data"]["data"]["task_result"]["videos"] = [
        {"url": "http://[::1/x"}, {"url": "data:video/mp4;base64,AAAA"},
        {"url": "https://cdn.klingai.com/ok.mp4"}]
    assert read(answer).video_urls == ("https://cdn.klingai.com/ok.mp4",)


def test_klings_task_id_is_kept_apart_from_the_gateways() -> None:
    answer = copy.deepcopy(SUCCESS)
    answer["data"]["task_id"] = "task_" + "a" * 32  # new-api from ba25ba88
    answer["data"]["data"]["data"]["task_id"] = "860260753860210752"
    task = read(answer)
    assert task.task_id == "task_" + "a" * 32
    assert task.upstream_task_id == "860260753860210752"


def test_seconds_and_milliseconds_are_not_mixed() -> None:
    task = read(SUCCESS)
    assert task.submitted_at == dt.datetime(2026, 3, 10, 8, 17, 45, tzinfo=dt.UTC)  # 1773130665 s
    assert task.finished_at == dt.datetime.fromtimestamp(1773130790, tz=dt.UTC)
    assert task.upstream_updated_at == dt.datetime.fromtimestamp(1773130790.456, tz=dt.UTC)
    assert read(SUCCESS, start_time=0).started_at is None  # new-api leaves unset times at 0


def test_a_huge_or_unsafe_task_id_from_the_server_is_refused() -> None:
    for bad in ("x" * 70_000, "a b", "..", ""):
        with pytest.raises(ValueError, match="task id"):
            read(SUCCESS, task_id=bad)


def test_server_text_is_cleaned_of_the_token_and_escapes() -> None:
    task = read(FAILURE, fail_reason=f"\x1b]8;;https://evil\x07click\x1b]8;;\x07 key {TOKEN} \x1b[2J\x9b31mred")
    assert task.fail_reason == "click key *** red"
    assert TOKEN not in str(task) and "\x1b" not in str(task)
