"""`make bench`: kling-i2v next to raw httpx, measured in the same run.

    .venv/bin/python benchmarks/run.py                  every benchmark, results.json, a table
    .venv/bin/python benchmarks/run.py --smoke --out x  each benchmark once at a tiny size
    .venv/bin/python benchmarks/run.py --only create_url_image import_time
    .venv/bin/python benchmarks/run.py --only create_url_image --profile   + pyinstrument

Every figure is a median of repeated rounds after warm-up, ours and the baseline
interleaved (AB BA ...) in the same process. Each benchmark runs in a fresh process of
its own, so none inherits another's heap (the 13 MB image buffers make the allocator's
state matter) or imports. The HTTP ones talk to benchmarks/loopback.py, a minimal
keep-alive server in its own process whose own cost is measured and printed.
`ratio` is ours / baseline; for async_create_throughput higher is better.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # when imported rather than run as a script
    sys.path.insert(0, str(HERE))

import httpx
from harness import FULL, SMOKE, Loopback, Sizes, write_jpeg

NAMES = (
    "create_url_image",
    "create_10mb_image",
    "image_load_time",
    "image_load_peak_memory",
    "import_time",
    "async_create_throughput",
    "wait_requests",
)
NEEDS_SERVER = {"create_url_image", "create_10mb_image", "async_create_throughput"}
NEEDS_IMAGE = {"create_10mb_image", "image_load_time", "image_load_peak_memory"}


# --------------------------------------------------------------------------- one benchmark


def run_one(name: str, sizes: Sizes, server: Loopback | None, image: Path | None) -> dict[str, Any]:
    """One benchmark, in this process (the child's side of `--child`)."""
    import bench_http
    import bench_local

    if name in NEEDS_SERVER:
        assert server is not None
    if name in NEEDS_IMAGE:
        assert image is not None
    if name == "create_url_image":
        return bench_http.create_url_image(server, sizes)  # type: ignore[arg-type]
    if name == "create_10mb_image":
        return bench_http.create_10mb_image(server, sizes, image)  # type: ignore[arg-type]
    if name == "async_create_throughput":
        return bench_http.async_create_throughput(server, sizes)  # type: ignore[arg-type]
    if name == "image_load_time":
        return bench_local.image_load_time(sizes, image)  # type: ignore[arg-type]
    if name == "image_load_peak_memory":
        return bench_local.image_load_peak_memory(sizes, image)  # type: ignore[arg-type]
    if name == "import_time":
        return bench_local.import_time(sizes)
    if name == "wait_requests":
        return bench_local.wait_requests(sizes)
    raise ValueError(name)


def child(args: argparse.Namespace) -> int:
    sizes = SMOKE if args.smoke else FULL
    server = Loopback(args.port) if args.port else None
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    result = run_one(args.child, sizes, server, args.image)
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False), file=sys.stderr)
    print(json.dumps(result))
    return 0


def spawn(name: str, args: argparse.Namespace, server: Loopback | None, image: Path | None) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    if args.smoke:
        command.append("--smoke")
    if args.profile:
        command.append("--profile")
    if server is not None:
        command += ["--port", str(server.port)]
    if image is not None:
        command += ["--image", str(image)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark {name} failed (exit status {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- the table


def _figure(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 10 else f"{value:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    header = ("benchmark", "ours", "baseline", "unit", "ratio", "target", "")
    lines = [header]
    for r in rows:
        lines.append((
            r["name"], _figure(r["ours"]), _figure(r["baseline"]), r["unit"],
            f"{r['ratio']:.3f}", r["target"], "ok" if r["met"] else "MISSED",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(
            cell.rjust(w) if 0 < i < 3 or i == 4 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def describe_server(server: dict[str, Any]) -> str:
    text = (
        f"server: {server['server']} ({server['loop']})\n"
        f"  raw-socket client, 1 connection: {server['raw_client_one_at_a_time_rps']:,} req/s "
        f"one at a time, {server['raw_client_pipelined_rps']:,} req/s pipelined "
        f"(64 deep, {server['pipelined_cpu_us_per_request']} us of server CPU per request)"
    )
    fake = server["fake_gateway_baseline_us_per_create"]
    if fake is not None:
        text += (f"\n  for comparison, the raw httpx create against kling_i2v.testing's fake "
                 f"gateway: {fake:.0f} us/call")
    return text


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="each benchmark once, tiny sizes (for tests)")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=f"some of: {', '.join(NAMES)}")
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="default: benchmarks/results.json")
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of each benchmark")
    parser.add_argument("--child", choices=NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    import bench_http

    names = tuple(args.only) if args.only else NAMES
    sizes = SMOKE if args.smoke else FULL
    print(
        f"kling-i2v benchmarks{' (smoke: one round at tiny sizes, figures meaningless)' if args.smoke else ''}: "
        f"Python {platform.python_version()}, httpx {httpx.__version__}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    server_info: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as workdir:
        image = write_jpeg(Path(workdir), sizes.big_image_bytes) if NEEDS_IMAGE & set(names) else None
        server = Loopback.start() if NEEDS_SERVER & set(names) else None
        try:
            for name in names:
                began = time.perf_counter()
                print(f"  {name} ...", end="", flush=True, file=sys.stderr)
                result = spawn(name, args, server if name in NEEDS_SERVER else None,
                               image if name in NEEDS_IMAGE else None)
                result["seconds_spent"] = round(time.perf_counter() - began, 2)
                print(f" {result['seconds_spent']:.1f} s", file=sys.stderr)
                rows.append(result)
            if server is not None:
                server_info = bench_http.server_cost(server, sizes)
                for result in rows:
                    if result["name"] in NEEDS_SERVER:
                        result["server"] = f"{server_info['server']} ({server_info['loop']})"
        finally:
            if server is not None:
                server.close()
    args.out.write_text(json.dumps(rows, indent=2) + "\n")

    print()
    print(table(rows))
    print("\nratio = ours / baseline: medians of interleaved rounds after warm-up, each benchmark "
          "in a fresh process; async_create_throughput: higher is better.")
    if server_info:
        print("\n" + describe_server(server_info))
    print(f"\nwrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
