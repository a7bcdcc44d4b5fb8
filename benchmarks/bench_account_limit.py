"""The account's task limit, found and kept (issue 13.4): a batch of 200 rows against a fake
gateway that lets only C tasks run at once (C = 3 and 10, unknown to the client), each task
taking T seconds on the fake's clock.

    .venv/bin/python benchmarks/bench_account_limit.py            # writes benchmarks/account_limit.json
    .venv/bin/python benchmarks/bench_account_limit.py --smoke    # tiny, for the test suite

Figures per C: the makespan against the ideal ceil(rows / C) x T (no batch can beat it:
only C tasks run at once), and the share of creates the gateway answered 429. Targets:
makespan <= 1.15 x ideal, 429s <= 5 % of creates, with the batch's default settings.

Time is scaled, and every time constant with it: the fake runs `SCALE` simulated seconds per
real second, and the batch's defaults that are durations (the poll interval, the backoff
delays) are divided by the same factor, so the run is the default batch against a
gateway whose tasks take T = 120 s, seen at 1/SCALE of real time. The fake runs in its own
process (python -m kling_i2v.testing), so it does not share the batch's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
from kling_i2v import RetryPolicy
from kling_i2v.batch import BatchOptions, batch_client, run_batch
from kling_i2v.manifest import read_rows

HERE = Path(__file__).resolve().parent
TOKEN = "sk-bench-limit"
TASK_SECONDS = 120.0
"""A Kling render takes minutes; 2 minutes on the fake's clock."""
SCALE = 100.0
"""1.2 s of real time per task: HTTP and fsync costs (milliseconds, which time scaling does
not shrink) stay small beside a task, as beside a real 2-minute render."""
TARGET_MAKESPAN = 1.15
TARGET_LIMITED = 0.05


def scaled_defaults(scale: float) -> BatchOptions:
    """BatchOptions() with every duration divided by `scale`: the defaults, sped up."""
    default = BatchOptions()
    backoff = default.backoff
    return attrs.evolve(default, poll_interval=default.poll_interval / scale,
                        backoff=RetryPolicy(initial_delay=backoff.initial_delay / scale,
                                            max_delay=backoff.max_delay / scale,
                                            max_retry_after=backoff.max_retry_after / scale))


def start_fake(limit: int, scale: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kling_i2v.testing", "--port", "0", "--token", TOKEN,
         "--time-scale", str(scale), "--task-seconds", str(TASK_SECONDS),
         "--max-running", str(limit)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export ANYFAST_BASE_URL="):
            return process, line.strip().split("=", 1)[1]
    process.kill()
    raise RuntimeError(f"the fake gateway did not start: {process.stderr.read() if process.stderr else ''}")


def one_case(limit: int, rows: int, scale: float) -> dict[str, Any]:
    fake, base_url = start_fake(limit, scale)
    try:
        with tempfile.TemporaryDirectory() as folder:
            manifest = Path(folder) / "rows.csv"
            # model_name given: new-api refuses a create without it (gateway-facts.md, Create)
            manifest.write_text("image,prompt,model_name\n" + "".join(
                f"https://images.example/shot-{n}.png,shot {n},kling-v2-master\n" for n in range(rows)))
            options = scaled_defaults(scale)

            async def go() -> Any:
                async with batch_client(options, TOKEN, base_url=base_url) as kling:
                    return await run_batch(read_rows(manifest), kling, Path(folder) / "out", options)

            started = time.perf_counter()
            result = asyncio.run(go())
            makespan = time.perf_counter() - started
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    ideal = math.ceil(rows / limit) * TASK_SECONDS / scale
    done = sum(1 for r in result.rows if r.state.value == "downloaded")
    return {
        "limit": limit, "rows": rows, "downloaded": done,
        "makespan_s": round(makespan, 3), "ideal_s": round(ideal, 3),
        "makespan_ratio": round(makespan / ideal, 3),
        "creates_sent": result.creates_sent, "creates_429": result.limited,
        "share_429": round(result.limited / max(1, result.creates_sent), 4),
        "window_at_end": result.max_running,
        "targets": {"makespan_ratio": TARGET_MAKESPAN, "share_429": TARGET_LIMITED},
        "met": done == rows and makespan / ideal <= TARGET_MAKESPAN and result.limited <= TARGET_LIMITED * result.creates_sent,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny: 12 rows, for the test suite")
    parser.add_argument("--out", type=Path, default=HERE / "account_limit.json")
    args = parser.parse_args(argv)
    rows, limits = (12, (3,)) if args.smoke else (200, (3, 10))
    results = [one_case(limit, rows, SCALE) for limit in limits]
    report = {"benchmark": "account_limit", "task_seconds": TASK_SECONDS, "time_scale": SCALE,
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "cases": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for case in results:
        print(f"account limit C={case['limit']:>2}: makespan {case['makespan_s']:.2f}s vs ideal "
              f"{case['ideal_s']:.2f}s = {case['makespan_ratio']:.3f}x (target <= {TARGET_MAKESPAN}); "
              f"429s {case['creates_429']}/{case['creates_sent']} = {case['share_429']:.1%} "
              f"(target <= {TARGET_LIMITED:.0%}); window at the end {case['window_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
