"""`python -m kling_i2v.testing`: run the fake gateway until interrupted.

It prints `export ANYFAST_BASE_URL=...` and `export ANYFAST_API_KEY=...` on stdout, one per line, as
soon as it listens (a shell can `eval` them), and logs to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from .server import FakeGateway


def _rate(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=RATE, got {text!r}")
    return key, float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kling_i2v.testing",
        description="Run the fake anyfast.ai gateway (Kling image-to-video) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (default 8000)")
    parser.add_argument(
        "--token", action="append", help="accepted token; repeatable (default sk-fake)"
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per second"
    )
    parser.add_argument("--task-seconds", type=float, default=10.0, help="simulated task length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fault-rate",
        type=_rate,
        action="append",
        default=[],
        metavar="KEY=RATE",
        help="random faults on API calls, e.g. 429=0.1 or 5xx=0.05; repeatable",
    )
    args = parser.parse_args(argv)

    gateway = FakeGateway(
        tokens=args.token or ("sk-fake",),
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        task_seconds=args.task_seconds,
        seed=args.seed,
    )
    if args.fault_rate:
        gateway.set_fault_rates(dict(args.fault_rate), seed=args.seed)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with gateway:
        print(f"export ANYFAST_BASE_URL={gateway.base_url}", flush=True)
        print(f"export ANYFAST_API_KEY={gateway.token}", flush=True)
        print(f"fake gateway listening on {gateway.base_url} (Ctrl-C stops it)", file=sys.stderr)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
