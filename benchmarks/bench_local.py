"""The benchmark without a server: how many requests wait() makes on a simulated clock.
(Import time, a fresh process per round, is in bench_fresh.py. Image loading has no row
of its own any more: a local image is checked from its header and streamed while the
request is sent, so its cost is in the create_10mb_image rows.)"""

from __future__ import annotations

from typing import Any

import httpx
from harness import (
    CREATE_PATH,
    TOKEN,
    Sizes,
    Target,
    row,
)

# --------------------------------------------------------------------------- wait() requests


def _query_reply(task_id: str, now: float, duration: float) -> dict[str, Any]:
    """The gateway's answer for a task that started at 0 and finishes at `duration`
    (simulated seconds): progress grows with the simulated time."""
    done = now >= duration
    upstream: dict[str, Any] = {
        "task_id": task_id,
        "task_status": "succeed" if done else "processing",
        "task_status_msg": "",
        "task_info": {},
        "created_at": 0,
        "updated_at": int(now * 1000),
    }
    if done:
        upstream["task_result"] = {
            "videos": [{"id": task_id + "-0", "url": "https://cdn.example/v.mp4", "duration": "5"}]
        }
    return {
        "code": "success",
        "message": "",
        "data": {
            "task_id": task_id,
            "action": "image2video",
            "status": "SUCCESS" if done else "IN_PROGRESS",
            "fail_reason": "",
            "submit_time": 0,
            "start_time": 0,
            "finish_time": int(duration) if done else 0,
            "progress": "100%" if done else f"{min(99, int(now / duration * 100))}%",
            "data": {"code": 0, "message": "SUCCEED", "request_id": "r", "data": upstream},
        },
    }


def _wait_once(duration: float) -> tuple[int, float]:
    """GET requests wait() makes for a task of `duration` simulated seconds, and how late
    (simulated seconds) it noticed the task was done."""
    from kling_i2v import KlingClient
    from kling_i2v.testing import SimulatedClock

    clock = SimulatedClock()
    gets = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal gets
        if request.method != "GET" or not request.url.path.startswith(CREATE_PATH + "/"):
            return httpx.Response(404, json={"error": {"message": "no", "type": "x", "code": "x"}})
        gets += 1
        task_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json=_query_reply(task_id, clock.now, duration))

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1")
    with KlingClient(TOKEN, base_url="http://127.0.0.1", http_client=http, clock=clock) as kling:
        task = kling.wait("880000000000000001")
    http.close()
    assert task.finished
    return gets, clock.now - duration


def wait_requests(sizes: Sizes) -> dict[str, Any]:
    from kling_i2v import PollPolicy

    cap = PollPolicy().max_interval
    duration = sizes.wait_task_seconds
    gets, delay = _wait_once(duration)
    # "Never over the cap": the same check for tasks from 0.5 s to 600 s long.
    sweep = [0.5 + i * (599.5 / max(1, sizes.wait_sweep - 1)) for i in range(sizes.wait_sweep)]
    results = [(d, *_wait_once(d)) for d in sweep]
    worst_delay = max([delay] + [late for _, _, late in results])
    long_tasks = [(n / (d / cap)) for d, n, _ in results if d >= duration]
    return row(
        "wait_requests", float(gets), duration / cap, "GET requests", Target(1.5),
        also_required=worst_delay <= cap,
        task_seconds=duration,
        poll_policy=repr(PollPolicy()),
        cap_s=cap,
        detection_delay_s=round(delay, 3),
        max_detection_delay_s=round(worst_delay, 3),
        sweep=f"{len(sweep)} task lengths from 0.5 s to 600 s",
        worst_ratio_tasks_over_120s=round(max(long_tasks), 3) if long_tasks else None,
        transport="httpx.MockTransport answering from the simulated clock: this row counts "
                  "requests, not time, so no server is involved",
    )
