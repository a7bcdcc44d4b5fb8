"""The benchmarks without a server: import time, and how many requests wait() makes on a
simulated clock. (Image loading has no row of its own any more: a local image is checked
from its header and streamed while the request is sent, so its cost is in the
create_10mb_image rows.)"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from harness import (
    CREATE_PATH,
    TOKEN,
    Sizes,
    Target,
    child_env,
    interleaved,
    median,
    row,
    spread,
)

# --------------------------------------------------------------------------- import time


# httpx imports its command-line client (click, rich, pygments) whenever click is
# installed, as it is here (schemathesis brings it); without it `import httpx` is much
# cheaper, and the same absolute overhead of ours is a larger ratio.
_NO_HTTPX_CLI = "import sys; sys.modules['click'] = None; "


def import_time(sizes: Sizes) -> dict[str, Any]:
    env = child_env()

    def fresh(statement: str) -> Callable[[], float]:
        command = [sys.executable, "-c", statement]

        def round_() -> float:
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True)
            return time.perf_counter() - start

        return round_

    # Warm-up rounds also write the bytecode caches, as pip does at install time.
    ours_s, base_s = interleaved(
        fresh("import kling_i2v"), fresh("import httpx"),
        rounds=sizes.import_processes, warmup=max(2, sizes.warmup),
    )
    lean_ours, lean_base = interleaved(
        fresh(_NO_HTTPX_CLI + "import kling_i2v"), fresh(_NO_HTTPX_CLI + "import httpx"),
        rounds=max(1, sizes.import_processes * 2 // 3), warmup=1,
    )
    startup = [fresh("pass")() for _ in range(max(1, sizes.import_processes // 3))]
    ours_ms = [v * 1e3 for v in ours_s]
    base_ms = [v * 1e3 for v in base_s]
    startup_ms = median([v * 1e3 for v in startup])
    return row(
        "import_time", median(ours_ms), median(base_ms), "ms/process", Target(1.30),
        processes_each=len(ours_ms),
        ours_spread=spread(ours_ms), baseline_spread=spread(base_ms),
        bare_interpreter_ms=startup_ms,
        ratio_without_interpreter_startup=round(
            (median(ours_ms) - startup_ms) / (median(base_ms) - startup_ms), 3
        ),
        without_httpx_cli={
            "ours_ms": median([v * 1e3 for v in lean_ours]),
            "baseline_ms": median([v * 1e3 for v in lean_base]),
            "ratio": round(median(lean_ours) / median(lean_base), 4),
            "processes_each": len(lean_ours),
        },
        note="fresh `python -c` processes, interleaved; bytecode caches written (as by pip "
             "install); httpx here imports its CLI (click is installed), see without_httpx_cli",
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
