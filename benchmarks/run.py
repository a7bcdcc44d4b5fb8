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
`ratio` is ours / baseline; for async_creates_* higher is better.
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
from harness import (
    FULL,
    SMOKE,
    Loopback,
    Sizes,
    Target,
    median,
    min_median_max,
    row,
    spread,
    write_jpeg,
)

NAMES = (
    "create_url_image",
    "http_client_floor",
    "create_10mb_image",
    "create_10mb_rss",
    "first_create",
    "cli",
    "async_concurrency",
    "batch",
    "batch_rss",
    "batch_commit",
    "import_time",
    "wait_requests",
)
NEEDS_SERVER = set(NAMES) - {"import_time", "wait_requests", "batch_commit"}
NEEDS_IMAGE = {"create_10mb_image", "create_10mb_rss", "batch_rss"}
# Peak-RSS rows: each variant in fresh processes of its own, put together by the parent.
RSS_VARIANTS = {"create_10mb_rss": ("ours", "raw_streamed", "naive"), "batch_rss": ("local", "url")}


# --------------------------------------------------------------------------- one benchmark


def run_one(name: str, sizes: Sizes, server: Loopback | None, image: Path | None,
            variant: str | None = None) -> list[dict[str, Any]]:
    """One benchmark, in this process (the child's side of `--child`); its rows."""
    import bench_batch
    import bench_fresh
    import bench_http
    import bench_local

    if name in NEEDS_SERVER:
        assert server is not None
    if name in NEEDS_IMAGE:
        assert image is not None
    if name == "create_10mb_rss":
        return [bench_http.create_10mb_rss(server, sizes, image, variant or "ours")]  # type: ignore[arg-type]
    if name == "batch_rss":
        return [bench_batch.batch_rss(server, sizes, image, variant or "local")]  # type: ignore[arg-type]
    with_server = {
        "create_url_image": lambda: [bench_http.create_url_image(server, sizes)],
        "http_client_floor": lambda: bench_http.http_client_floor(server, sizes),
        "create_10mb_image": lambda: bench_http.create_10mb_image(server, sizes, image),
        "first_create": lambda: bench_fresh.first_create(server, sizes),
        "cli": lambda: bench_fresh.cli(server, sizes),
        "async_concurrency": lambda: bench_http.async_concurrency(server, sizes),
        "batch": lambda: bench_batch.batch_rows(server, sizes),
        "batch_commit": lambda: bench_batch.commit_cost(sizes),
        "import_time": lambda: [bench_fresh.import_time(sizes)],
        "wait_requests": lambda: [bench_local.wait_requests(sizes)],
    }
    return with_server[name]()  # type: ignore[no-untyped-call]


def child(args: argparse.Namespace) -> int:
    sizes = SMOKE if args.smoke else FULL
    server = Loopback(args.port) if args.port else None
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    result = run_one(args.child, sizes, server, args.image, args.variant)
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False), file=sys.stderr)
    print(json.dumps(result))
    return 0


def spawn(name: str, args: argparse.Namespace, server: Loopback | None, image: Path | None,
          variant: str | None = None) -> list[dict[str, Any]]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    if args.smoke:
        command.append("--smoke")
    if args.profile:
        command.append("--profile")
    if server is not None:
        command += ["--port", str(server.port)]
    if image is not None:
        command += ["--image", str(image)]
    if variant is not None:
        command += ["--variant", variant]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark {name} failed (exit status {done.returncode})")
    result: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rss_rows(name: str, args: argparse.Namespace, sizes: Sizes, server: Loopback,
             image: Path) -> list[dict[str, Any]]:
    """A peak-RSS row from fresh processes, the variants interleaved."""
    growth: dict[str, list[float]] = {v: [] for v in RSS_VARIANTS[name]}
    peak: dict[str, list[float]] = {v: [] for v in RSS_VARIANTS[name]}
    for index in range(sizes.rss_repeats):
        order = list(RSS_VARIANTS[name])
        for variant in order if index % 2 == 0 else reversed(order):
            (result,) = spawn(name, args, server, image, variant)
            growth[variant].append(result["growth_kib"] / 1024)
            peak[variant].append(result.get("peak_kib", 0) / 1024)
    mib = image.stat().st_size / 1024 / 1024
    if name == "create_10mb_rss":
        return [row(
            "create_10mb_image_rss", median(growth["ours"]), mib, "MiB", Target(0.1),
            ours_is="peak RSS growth of one create() with the image, fresh process, after a "
                    "warm-up create with a URL image",
            baseline_is="the image file's size (the target: growth <= 0.1 x the file)",
            ours_spread=spread(growth["ours"]),
            raw_streamed_httpx_growth_mib=spread(growth["raw_streamed"]),
            naive_growth_mib=spread(growth["naive"]),
            ratio_vs_naive=round(median(growth["ours"]) / max(median(growth["naive"]), 1e-9), 4),
            repeats=sizes.rss_repeats,
        )]
    return [row(
        f"batch_{sizes.rss_batch_rows}_rows_10mb_images_rss", median(peak["local"]),
        median(peak["url"]), "MiB", Target(1.3),
        ours_is=f"peak RSS of the process over a batch of {sizes.rss_batch_rows} rows of 10 MB "
                f"local images, concurrency 4 (fresh process, after a warm-up batch)",
        baseline_is="the same batch with URL images",
        ours_spread=spread(peak["local"]), baseline_spread=spread(peak["url"]),
        growth_local_mib=spread(growth["local"]), growth_url_mib=spread(growth["url"]),
        repeats=sizes.rss_repeats,
    )]


# --------------------------------------------------------------------------- the table


def table(rows: list[dict[str, Any]]) -> str:
    header = ("benchmark", "ours min/median/max", "baseline min/median/max", "unit", "ratio",
              "target", "")
    lines = [header]
    for r in rows:
        verdict = "reference" if r["met"] is None else "ok" if r["met"] else "MISSED"
        lines.append((
            r["name"], min_median_max(r["ours"], r.get("ours_spread")),
            min_median_max(r["baseline"], r.get("baseline_spread")), r["unit"],
            f"{r['ratio']:.3f}", r["target"], verdict,
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
    parser.add_argument("--variant", help=argparse.SUPPRESS)
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
                if name in RSS_VARIANTS:
                    assert server is not None and image is not None
                    results = rss_rows(name, args, sizes, server, image)
                else:
                    results = spawn(name, args, server if name in NEEDS_SERVER else None,
                                    image if name in NEEDS_IMAGE else None)
                spent = round(time.perf_counter() - began, 2)
                print(f" {spent:.1f} s", file=sys.stderr)
                for result in results:
                    result["seconds_spent"] = spent
                    result["benchmark"] = name
                rows.extend(results)
            if server is not None:
                server_info = bench_http.server_cost(server, sizes)
                for result in rows:
                    if result["benchmark"] in NEEDS_SERVER:
                        result["server"] = f"{server_info['server']} ({server_info['loop']})"
        finally:
            if server is not None:
                server.close()
    args.out.write_text(json.dumps(rows, indent=2) + "\n")

    print()
    print(table(rows))
    print("\nratio = ours / baseline: medians of interleaved rounds after warm-up, each benchmark "
          "in a fresh process; async_creates_*: higher is better.")
    if server_info:
        print("\n" + describe_server(server_info))
    print(f"\nwrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
