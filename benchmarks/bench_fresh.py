"""The benchmarks that start a fresh process per round: `import kling_i2v`, the first
create() a program makes, and the command line, each against plain httpx doing the same
in a fresh process.

Every round is a whole `python ...` process, interleaved ours / baseline, so the figures
include interpreter start-up, imports and the first request: what a user waits for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    CREATE_PATH,
    PROMPT,
    REFERENCE,
    TOKEN,
    URL_IMAGE,
    Loopback,
    Sizes,
    Target,
    child_env,
    interleaved,
    interleaved_many,
    median,
    row,
    spread,
)

BIN = Path(sys.executable).parent
TASK_ID = "880000000000000001"


def _env(server: Loopback) -> dict[str, str]:
    env = child_env()
    env.update(ANYFAST_API_KEY=TOKEN, ANYFAST_BASE_URL=server.base_url)
    return env


def _process(command: list[str], env: dict[str, str]) -> Callable[[], float]:
    def round_() -> float:
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{command} exited {done.returncode}")
        return elapsed

    return round_


def _ms_row(name: str, ours: list[float], base: list[float], target: Target, **extra: Any) -> dict[str, Any]:
    ours_ms, base_ms = [v * 1e3 for v in ours], [v * 1e3 for v in base]
    return row(name, median(ours_ms), median(base_ms), "ms/process", target,
               processes_each=len(ours_ms), ours_spread=spread(ours_ms),
               baseline_spread=spread(base_ms), **extra)


# --------------------------------------------------------------------------- first create


_OURS_FIRST = f"""
from kling_i2v import KlingClient
with KlingClient() as kling:
    print(kling.create(image={URL_IMAGE!r}, prompt={PROMPT!r}).task_id)
"""

_RAW_FIRST = f"""
import os, httpx
with httpx.Client(base_url=os.environ["ANYFAST_BASE_URL"],
                  headers={{"Authorization": "Bearer " + os.environ["ANYFAST_API_KEY"]}}) as raw:
    response = raw.post({CREATE_PATH!r}, json={{"image": {URL_IMAGE!r}, "prompt": {PROMPT!r},
                                               "model_name": "kling-v2-master"}})
    response.raise_for_status()
    print(response.json()["task_id"])
"""


def first_create(server: Loopback, sizes: Sizes) -> list[dict[str, Any]]:
    env = _env(server)
    ours, base = interleaved(
        _process([sys.executable, "-c", _OURS_FIRST], env),
        _process([sys.executable, "-c", _RAW_FIRST], env),
        rounds=sizes.fresh_processes, warmup=max(1, sizes.warmup),
    )
    bare = [_process([sys.executable, "-c", "pass"], env)() for _ in range(max(1, sizes.fresh_processes // 3))]
    bare_ms = median(bare) * 1e3
    return [_ms_row(
        "first_create_fresh_process", ours, base, Target(4.0),
        baseline_is="a fresh `python -c` posting the same create with a new httpx.Client",
        bare_interpreter_ms=round(bare_ms, 1),
        ratio_without_interpreter_startup=round(
            (median(ours) * 1e3 - bare_ms) / (median(base) * 1e3 - bare_ms), 3),
    )]


# --------------------------------------------------------------------------- import time


# httpx imports its command-line client (click, rich, pygments) whenever click is
# installed, as it is here (schemathesis brings it); without it `import httpx` is much
# cheaper, and the same absolute overhead of ours is a larger ratio.
_NO_HTTPX_CLI = "import sys; sys.modules['click'] = None; "
# What a program's first line does (README). `import kling_i2v` alone loads its names on
# first use (PEP 562) and no longer imports httpx: measured bare, it would be a row about
# laziness, not about what using the package costs.
_OURS_IMPORT = "from kling_i2v import KlingClient"


def import_time(sizes: Sizes) -> dict[str, Any]:
    env = child_env()

    def fresh(statement: str) -> Callable[[], float]:
        return _process([sys.executable, "-c", statement], env)

    # Warm-up rounds also write the bytecode caches, as pip does at install time.
    ours_s, base_s = interleaved(
        fresh(_OURS_IMPORT), fresh("import httpx"),
        rounds=sizes.import_processes, warmup=max(2, sizes.warmup),
    )
    lean_ours, lean_base = interleaved(
        fresh(_NO_HTTPX_CLI + _OURS_IMPORT), fresh(_NO_HTTPX_CLI + "import httpx"),
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
        statement=_OURS_IMPORT,
        note="fresh `python -c` processes, interleaved; bytecode caches written (as by pip "
             "install); httpx here imports its CLI (click is installed), see without_httpx_cli",
    )


# --------------------------------------------------------------------------- the command line


_RAW_GET = f"""
import json, os, httpx
response = httpx.get(os.environ["ANYFAST_BASE_URL"] + {CREATE_PATH + "/" + TASK_ID!r},
                     headers={{"Authorization": "Bearer " + os.environ["ANYFAST_API_KEY"]}})
response.raise_for_status()
print(json.dumps(response.json()["data"], indent=2))
"""


# The floor under `status --json`: the same GET through the generated package alone (its
# request builder and answer model, which bring attrs), no overlay. What ours costs above
# this is the overlay's own: the client, its errors, the command line.
_GENERATED_GET = f"""
import json, os, httpx
from kling_i2v_api.api.image2video import get_image_to_video_task
from kling_i2v_api.models import TaskQueryResponse
request = get_image_to_video_task.build_request({TASK_ID!r})
response = httpx.request(request["method"], os.environ["ANYFAST_BASE_URL"] + request["url"],
                         headers={{"Authorization": "Bearer " + os.environ["ANYFAST_API_KEY"]}})
response.raise_for_status()
print(json.dumps(TaskQueryResponse.from_dict(response.json()).to_dict()["data"], indent=2))
"""


def cli(server: Loopback, sizes: Sizes) -> list[dict[str, Any]]:
    env = _env(server)
    ours_status = [str(BIN / "kling-i2v"), "status", TASK_ID, "--json"]
    check = subprocess.run(ours_status, env=env, capture_output=True, text=True, check=False)
    if check.returncode != 0 or json.loads(check.stdout) is None:
        raise RuntimeError(f"kling-i2v status failed: {check.stderr[-2000:]}")
    help_ours, help_base = interleaved(
        _process([str(BIN / "kling-i2v"), "--help"], env),
        _process([str(BIN / "httpx"), "--help"], env),
        rounds=sizes.fresh_processes, warmup=max(1, sizes.warmup),
    )
    status_ours, status_base, floor = interleaved_many(
        [_process(ours_status, env), _process([sys.executable, "-c", _RAW_GET], env),
         _process([sys.executable, "-c", _GENERATED_GET], env)],
        rounds=sizes.fresh_processes, warmup=max(1, sizes.warmup),
    )
    floor_ms = [v * 1e3 for v in floor]
    return [
        _ms_row("cli_help", help_ours, help_base, REFERENCE,
                baseline_is="`httpx --help` (httpx's own command line, click + rich)"),
        _ms_row("cli_status_json", status_ours, status_base, Target(1.25),
                baseline_is="a fresh `python -c` doing one httpx.get and printing the JSON",
                generated_floor_ms=median(floor_ms), generated_floor_spread=spread(floor_ms),
                generated_floor_ratio=round(median(floor) / median(status_base), 4),
                generated_floor_is="the same GET through kling_i2v_api alone (build_request, "
                                   "TaskQueryResponse), in the same interleaved rounds"),
    ]


if __name__ == "__main__":  # pragma: no cover - a quick look by hand
    with Loopback.start() as server_:
        from harness import SMOKE

        print(json.dumps(first_create(server_, SMOKE) + cli(server_, SMOKE), indent=2))
        os._exit(0)
