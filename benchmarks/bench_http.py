"""The benchmarks that talk HTTP to the loopback server: ours next to raw httpx.

Both sides send the same JSON body to the same server over a pooled client, and both
read the task id out of the answer; ours additionally validates, retries-wraps and builds
its models, which is exactly the cost being measured.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from harness import (
    CREATE_PATH,
    PROMPT,
    TOKEN,
    URL_IMAGE,
    Loopback,
    ServerMeter,
    Sizes,
    Target,
    interleaved,
    interleaved_async,
    median,
    per_call,
    row,
    spread,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sent_body(**fields: Any) -> dict[str, Any]:
    """The JSON body KlingClient.create sends for `fields`, caught on a mock transport, so
    the baseline posts byte for byte the same request (external_task_id included)."""
    from kling_i2v import KlingClient

    caught: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        caught.append(request.content)
        return httpx.Response(200, json={"task_id": "1", "status": "queued"})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1")
    with KlingClient(TOKEN, base_url="http://127.0.0.1", http_client=http) as kling:
        kling.create(**fields)
    http.close()
    body: dict[str, Any] = json.loads(caught[0])
    return body


def _last_body_bytes(server: Loopback, call: Any) -> int:
    call()
    return int(server.stats()["last_body_bytes"])


# --------------------------------------------------------------------------- create_url_image


def create_url_image(server: Loopback, sizes: Sizes) -> dict[str, Any]:
    from kling_i2v import KlingClient

    body = sent_body(image=URL_IMAGE, prompt=PROMPT)
    kling = KlingClient(TOKEN, base_url=server.base_url)
    raw = httpx.Client(base_url=server.base_url, headers=AUTH)

    def ours() -> str:
        return kling.create(image=URL_IMAGE, prompt=PROMPT).task_id

    def baseline() -> str:
        response = raw.post(CREATE_PATH, json=body)
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    try:
        meter = ServerMeter(server)
        ours_s, base_s = interleaved(
            per_call(ours, sizes.url_calls_per_round),
            per_call(baseline, sizes.url_calls_per_round),
            rounds=sizes.url_rounds,
            warmup=sizes.warmup,
        )
        server_cost = meter.read()
        same: dict[str, Any] = {
            "body_bytes_ours": _last_body_bytes(server, ours),
            "body_bytes_baseline": _last_body_bytes(server, baseline),
        }
    finally:
        kling.close()
        raw.close()
    ours_us = [v * 1e6 for v in ours_s]
    base_us = [v * 1e6 for v in base_s]
    ours_median, baseline_us = median(ours_us), median(base_us)
    server_us = server_cost["server_cpu_us_per_request"]
    return row(
        "create_url_image", ours_median, baseline_us, "us/call", Target(1.10),
        rounds=len(ours_us), calls_per_round=sizes.url_calls_per_round,
        ours_spread=spread(ours_us), baseline_spread=spread(base_us),
        overhead_us=round(ours_median - baseline_us, 1),
        **same, **server_cost,
        server_share_of_baseline=round(server_us / baseline_us, 3),
        # Sequential calls wait for the server, so its CPU time is on both sides' clock;
        # this is the ratio with it taken off both (the worst case for ours).
        ratio_without_server_cpu=round((ours_median - server_us) / (baseline_us - server_us), 4),
    )


# --------------------------------------------------------------------------- create_10mb_image


def create_10mb_image(server: Loopback, sizes: Sizes, image: Path) -> dict[str, Any]:
    from kling_i2v import Image, KlingClient

    sent = sent_body(image=URL_IMAGE, prompt=PROMPT)  # what the client fills in, sent alike
    external_task_id = sent["external_task_id"]
    kling = KlingClient(TOKEN, base_url=server.base_url)
    raw = httpx.Client(base_url=server.base_url, headers=AUTH)

    def ours() -> str:
        return kling.create(image=Image.from_path(image), prompt=PROMPT).task_id

    def baseline() -> str:
        with open(image, "rb") as f:
            data = f.read()
        body = {
            "image": base64.b64encode(data).decode("ascii"),
            "prompt": PROMPT,
            "model_name": sent["model_name"],
            "external_task_id": external_task_id,
        }
        response = raw.post(CREATE_PATH, json=body)
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    try:
        meter = ServerMeter(server)
        ours_s, base_s = interleaved(
            per_call(ours, 1), per_call(baseline, 1), rounds=sizes.big_rounds, warmup=sizes.warmup
        )
        server_cost = meter.read()
        same: dict[str, Any] = {
            "body_bytes_ours": _last_body_bytes(server, ours),
            "body_bytes_baseline": _last_body_bytes(server, baseline),
        }
    finally:
        kling.close()
        raw.close()
    ours_ms = [v * 1e3 for v in ours_s]
    base_ms = [v * 1e3 for v in base_s]
    ours_median, baseline_ms = median(ours_ms), median(base_ms)
    server_ms = server_cost["server_cpu_us_per_request"] / 1e3
    return row(
        "create_10mb_image", ours_median, baseline_ms, "ms/call", Target(1.15),
        rounds=len(ours_ms), image_bytes=image.stat().st_size,
        ours_spread=spread(ours_ms), baseline_spread=spread(base_ms),
        **same, **server_cost,
        server_share_of_baseline=round(server_ms / baseline_ms, 3),
        ratio_without_server_cpu=round((ours_median - server_ms) / (baseline_ms - server_ms), 4),
    )


# --------------------------------------------------------------------------- async throughput


async def _async_throughput(server: Loopback, sizes: Sizes) -> dict[str, Any]:
    from kling_i2v import AsyncKlingClient

    body = sent_body(image=URL_IMAGE, prompt=PROMPT)
    kling = AsyncKlingClient(TOKEN, base_url=server.base_url)
    raw = httpx.AsyncClient(base_url=server.base_url, headers=AUTH)

    async def ours_one() -> str:
        return (await kling.create(image=URL_IMAGE, prompt=PROMPT)).task_id

    async def baseline_one() -> str:
        response = await raw.post(CREATE_PATH, json=body)
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    def batch(one: Any) -> Any:
        async def run() -> float:
            remaining = sizes.async_creates

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await one()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(sizes.async_concurrency)))
            return sizes.async_creates / (time.perf_counter() - start)

        return run

    try:
        meter = ServerMeter(server)
        ours_v, base_v = await interleaved_async(
            batch(ours_one), batch(baseline_one), rounds=sizes.async_rounds, warmup=sizes.warmup
        )
        server_cost = meter.read()
    finally:
        await kling.close()
        await raw.aclose()
    baseline_rps = median(base_v)
    return row(
        "async_create_throughput", median(ours_v), baseline_rps, "creates/s (higher is better)",
        Target(0.85, higher_is_better=True),
        rounds=len(ours_v), creates_per_round=sizes.async_creates,
        concurrency=sizes.async_concurrency,
        ours_spread=spread(ours_v), baseline_spread=spread(base_v),
        **server_cost,
        server_share_of_baseline=round(server_cost["server_cpu_us_per_request"] * 1e-6 * baseline_rps, 3),
    )


def async_create_throughput(server: Loopback, sizes: Sizes) -> dict[str, Any]:
    return asyncio.run(_async_throughput(server, sizes))


# --------------------------------------------------------------------------- the server's own cost


def _raw_request(body: bytes) -> bytes:
    return (
        f"POST {CREATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def _raw_client_rps(server: Loopback, seconds: float, depth: int) -> float:
    """Creates/s a raw-socket client gets from the server on one keep-alive connection,
    `depth` requests in flight (pipelined); the client does almost nothing per request."""
    from loopback import CREATE_REPLY

    request = _raw_request(json.dumps(sent_body(image=URL_IMAGE, prompt=PROMPT)).encode())
    batch, expect = request * depth, len(CREATE_REPLY) * depth
    done = 0
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or done == 0:
            sock.sendall(batch)
            got = 0
            while got < expect:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("the loopback server closed the connection")
                got += len(chunk)
            done += depth
    return done / elapsed


def _fake_gateway_us_per_create(seconds: float) -> float | None:
    """The baseline's sequential create against kling_i2v.testing's fake gateway (run as
    `python -m kling_i2v.testing` in its own process), to show why it is not used here."""
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "kling_i2v.testing", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(2))
        body = sent_body(image=URL_IMAGE, prompt=PROMPT)
        headers = {"Authorization": f"Bearer {settings['ANYFAST_API_KEY']}"}
        with httpx.Client(base_url=settings["ANYFAST_BASE_URL"], headers=headers) as raw:
            def one() -> None:
                response = raw.post(CREATE_PATH, json=body)
                response.raise_for_status()
                response.json()

            for _ in range(20):
                one()
            calls = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds or calls == 0:
                one()
                calls += 1
        return elapsed / calls * 1e6
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_cost(server: Loopback, sizes: Sizes) -> dict[str, Any]:
    """What the loopback server can do when the client is nearly free."""
    meter = ServerMeter(server)
    pipelined = _raw_client_rps(server, sizes.probe_seconds, depth=64)
    cost = meter.read()
    one_at_a_time = _raw_client_rps(server, sizes.probe_seconds, depth=1)
    return {
        "server": "benchmarks/loopback.py: asyncio Protocol, one process, fixed JSON answers",
        "loop": server.stats()["loop"],
        "raw_client_pipelined_rps": round(pipelined),
        "pipelined_cpu_us_per_request": cost["server_cpu_us_per_request"],
        "raw_client_one_at_a_time_rps": round(one_at_a_time),
        "fake_gateway_baseline_us_per_create": _fake_gateway_us_per_create(sizes.probe_seconds),
    }
