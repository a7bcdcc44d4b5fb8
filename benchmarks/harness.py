"""What every benchmark shares: the loopback server process, interleaved timing, result rows."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import attrs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOKEN = "sk-bench"
CREATE_PATH = "/kling/v1/videos/image2video"
PROMPT = "the cat jumps onto the sofa"
URL_IMAGE = "https://example.com/cat.jpg"


# --------------------------------------------------------------------------- settings


@attrs.frozen
class Sizes:
    """How much work each benchmark does: `full` for `make bench`, `smoke` for the test suite."""

    url_calls_per_round: int
    url_rounds: int
    big_image_bytes: int
    big_rounds: int
    rss_repeats: int
    """Fresh processes per variant for each peak-RSS row."""
    fresh_processes: int
    """Processes each side for the first-create and command-line rows."""
    import_processes: int
    async_creates: int
    """Creates per round at each concurrency (at least 2 per worker)."""
    async_levels: tuple[int, ...]
    async_rounds: int
    batch_rows: tuple[tuple[int, int], ...]
    """(rows in the manifest, rounds) for the batch rows."""
    rss_batch_rows: int
    commit_rows: tuple[int, int]
    """Journal sizes compared for the per-commit cost."""
    commit_sample: int
    commit_rounds: int
    wait_task_seconds: float
    wait_sweep: int
    probe_seconds: float
    warmup: int


# Every size twice, side by side: the full run (`make bench`) and the smoke test's tiny one.
_SIZES: dict[str, tuple[Any, Any]] = {
    "url_calls_per_round": (100, 2),
    "url_rounds": (15, 1),
    "big_image_bytes": (10 * 1024 * 1024, 64 * 1024),  # the upstream limit, inclusive
    "big_rounds": (11, 1),
    "rss_repeats": (3, 1),
    "fresh_processes": (5, 1),
    "import_processes": (7, 1),
    "async_creates": (128, 8),
    "async_levels": ((1, 16, 64, 256), (1, 4)),
    "async_rounds": (5, 1),
    "batch_rows": (((1000, 2), (10000, 1)), ((4, 1), (8, 1))),
    "rss_batch_rows": (8, 2),
    "commit_rows": ((1000, 100_000), (10, 100)),
    "commit_sample": (1000, 5),
    "commit_rounds": (21, 1),
    "wait_task_seconds": (120.0, 120.0),
    "wait_sweep": (400, 5),
    "probe_seconds": (1.0, 0.05),
    "warmup": (1, 0),
}
FULL = Sizes(**{name: full for name, (full, _) in _SIZES.items()})
SMOKE = Sizes(**{name: smoke for name, (_, smoke) in _SIZES.items()})


# --------------------------------------------------------------------------- rows


@attrs.frozen
class Target:
    """The issue's target for a row's ratio; `ratio=None` for a reference row (no target,
    shown for context, e.g. how far httpx itself is from http.client)."""

    ratio: float | None
    higher_is_better: bool = False

    def met(self, ratio: float) -> bool | None:
        if self.ratio is None:
            return None
        return ratio >= self.ratio if self.higher_is_better else ratio <= self.ratio

    def __str__(self) -> str:
        if self.ratio is None:
            return "reference"
        return f"{'>=' if self.higher_is_better else '<='} {self.ratio:g}"


REFERENCE = Target(None)


def row(
    name: str, ours: float, baseline: float, unit: str, target: Target, *,
    also_required: bool = True, **extra: Any,
) -> dict[str, Any]:
    """One entry of results.json: the issue's keys first, then the context. `also_required`
    is a condition besides the ratio that the target includes (wait_requests' delay cap)."""
    ratio = ours / baseline
    verdict = target.met(ratio)
    met = None if verdict is None else verdict and also_required
    return {
        "name": name,
        "ours": ours,
        "baseline": baseline,
        "unit": unit,
        "ratio": round(ratio, 4),
        "target": str(target),
        "higher_is_better": target.higher_is_better,
        "met": met,
        **extra,
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Extremes, median and quartiles, to show how steady a median is."""
    if len(values) < 2:
        return {"min": min(values), "median": median(values), "max": max(values)}
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"min": min(values), "q1": q1, "median": median(values), "q3": q3, "max": max(values)}


def figure(value: float) -> str:
    """A figure for the tables: three significant digits, thousands separated."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 10 else f"{value:.2f}"


def min_median_max(median_: float, spread_: dict[str, float] | None, *, bold: str = "") -> str:
    """min / median / max over the repeats (the median alone for a computed figure)."""
    if not spread_:
        return figure(median_)
    return (f"{figure(spread_['min'])} / {bold}{figure(median_)}{bold} / "
            f"{figure(spread_['max'])}")


# --------------------------------------------------------------------------- memory


def rss_kib() -> int:
    """This process's resident set now (Linux /proc)."""
    return _status_kib("VmRSS")


def peak_rss_kib() -> int:
    """This process's peak resident set since the last `reset_peak_rss()`."""
    return _status_kib("VmHWM")


def reset_peak_rss() -> None:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS
    (Documentation/filesystems/proc.rst, "clear_refs")."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


# --------------------------------------------------------------------------- timing


def interleaved(
    ours: Callable[[], float], baseline: Callable[[], float], *, rounds: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Run ours and the baseline in alternating order (AB BA AB ...), each call returning the
    figure for one round; warm-up rounds are run and dropped. A collection before every
    round, so neither side inherits the other's garbage."""
    ours_values, baseline_values = interleaved_many([ours, baseline], rounds=rounds, warmup=warmup)
    return ours_values, baseline_values


def interleaved_many(
    fns: Sequence[Callable[[], float]], *, rounds: int, warmup: int
) -> list[list[float]]:
    """`interleaved` for any number of contenders: ABC CBA ABC ..."""
    results: list[list[float]] = [[] for _ in fns]
    for index in range(warmup + rounds):
        order = list(zip(fns, results, strict=True))
        for fn, values in order if index % 2 == 0 else reversed(order):
            gc.collect()
            value = fn()
            if index >= warmup:
                values.append(value)
    return results


async def interleaved_async(
    ours: Callable[[], Awaitable[float]],
    baseline: Callable[[], Awaitable[float]],
    *,
    rounds: int,
    warmup: int,
) -> tuple[list[float], list[float]]:
    ours_values: list[float] = []
    baseline_values: list[float] = []
    for index in range(warmup + rounds):
        pair = [(ours, ours_values), (baseline, baseline_values)]
        for fn, values in pair if index % 2 == 0 else reversed(pair):
            gc.collect()
            value = await fn()
            if index >= warmup:
                values.append(value)
    return ours_values, baseline_values


def per_call(fn: Callable[[], object], calls: int) -> Callable[[], float]:
    """A round of `calls` sequential calls, as seconds per call."""

    def round_() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    return round_


# --------------------------------------------------------------------------- the server


class Loopback:
    """benchmarks/loopback.py: `start()` runs it in a child process (which stops when this
    process closes its stdin); `Loopback(port)` talks to one already running."""

    def __init__(self, port: int, process: subprocess.Popen[str] | None = None) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._process = process

    @classmethod
    def start(cls, loop: str = "auto") -> Loopback:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "loopback.py"), "--loop", loop],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        server = cls(int(line.split()[1]) if line.startswith("PORT ") else 0, process)
        if not server.port:
            server.close()
            raise RuntimeError(f"the loopback server did not start: {line!r}")
        return server

    def stats(self) -> dict[str, Any]:
        """The server's counters (this request included)."""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(b"GET /__stats HTTP/1.1\r\nhost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return dict(json.loads(data.partition(b"\r\n\r\n")[2]))

    def close(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServerMeter:
    """What the server spent (CPU seconds, requests) between two points."""

    def __init__(self, server: Loopback) -> None:
        self._server = server
        self._start = server.stats()

    def read(self) -> dict[str, Any]:
        end = self._server.stats()
        requests = end["requests"] - self._start["requests"] - 1  # minus the stats request
        cpu = end["cpu_seconds"] - self._start["cpu_seconds"]
        return {
            "server_requests": requests,
            "server_cpu_s": round(cpu, 4),
            "server_cpu_us_per_request": round(cpu / requests * 1e6, 1) if requests else 0.0,
        }


# --------------------------------------------------------------------------- test images


def imagegen() -> ModuleType:
    """tests/imagegen.py, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_bench_imagegen", REPO / "tests" / "imagegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_jpeg(directory: Path, size: int) -> Path:
    """A 4000x3000 JPEG padded to `size` bytes (the padding is COM segments)."""
    path = directory / f"bench-{size}.jpg"
    path.write_bytes(imagegen().make_jpeg(4000, 3000, pad_to=size))
    return path


def child_env() -> dict[str, str]:
    """The environment for fresh interpreters: bytecode caching left on, as after a
    `pip install` (which compiles every module); this machine's PYTHONDONTWRITEBYTECODE
    would otherwise make only the editable overlay recompile from source every time."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
