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
    load_rounds: int
    memory_rounds: int
    import_processes: int
    async_creates: int
    async_concurrency: int
    async_rounds: int
    wait_task_seconds: float
    wait_sweep: int
    probe_seconds: float
    warmup: int


FULL = Sizes(
    url_calls_per_round=100,
    url_rounds=41,
    big_image_bytes=int(9.5 * 1024 * 1024),
    big_rounds=21,
    load_rounds=31,
    memory_rounds=3,
    import_processes=21,
    async_creates=500,
    async_concurrency=32,
    async_rounds=11,
    wait_task_seconds=120.0,
    wait_sweep=400,
    probe_seconds=1.0,
    warmup=2,
)

SMOKE = Sizes(
    url_calls_per_round=2,
    url_rounds=1,
    big_image_bytes=64 * 1024,
    big_rounds=1,
    load_rounds=1,
    memory_rounds=1,
    import_processes=1,
    async_creates=8,
    async_concurrency=4,
    async_rounds=1,
    wait_task_seconds=120.0,
    wait_sweep=5,
    probe_seconds=0.05,
    warmup=0,
)


# --------------------------------------------------------------------------- rows


@attrs.frozen
class Target:
    ratio: float
    higher_is_better: bool = False

    def met(self, ratio: float) -> bool:
        return ratio >= self.ratio if self.higher_is_better else ratio <= self.ratio

    def __str__(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.ratio:g}"


def row(
    name: str, ours: float, baseline: float, unit: str, target: Target, *,
    also_required: bool = True, **extra: Any,
) -> dict[str, Any]:
    """One entry of results.json: the issue's keys first, then the context. `also_required`
    is a condition besides the ratio that the target includes (wait_requests' delay cap)."""
    ratio = ours / baseline
    met = target.met(ratio) and also_required
    return {
        "name": name,
        "ours": ours,
        "baseline": baseline,
        "unit": unit,
        "ratio": round(ratio, 4),
        "target": str(target),
        "higher_is_better": target.higher_is_better,
        "met": bool(met),
        **extra,
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Quartiles and extremes, to show how steady a median is."""
    if len(values) < 2:
        return {"min": min(values), "max": max(values)}
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"min": min(values), "q1": q1, "q3": q3, "max": max(values)}


# --------------------------------------------------------------------------- timing


def interleaved(
    ours: Callable[[], float], baseline: Callable[[], float], *, rounds: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Run ours and the baseline in alternating order (AB BA AB ...), each call returning the
    figure for one round; warm-up rounds are run and dropped. A collection before every
    round, so neither side inherits the other's garbage."""
    ours_values: list[float] = []
    baseline_values: list[float] = []
    for index in range(warmup + rounds):
        pair = [(ours, ours_values), (baseline, baseline_values)]
        for fn, values in pair if index % 2 == 0 else reversed(pair):
            gc.collect()
            value = fn()
            if index >= warmup:
                values.append(value)
    return ours_values, baseline_values


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
