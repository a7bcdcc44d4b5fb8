"""Suite 4, token secrecy: a canary token, DEBUG logging for every logger, and every error
path the client, the CLI (with --debug and --json) and the batch runner have. The canary
never appears in captured logs, output, exception text, tracebacks, reprs, or files written.

Two gateways that misbehave on purpose are part of it: one that echoes the token back in
its 401 message (some gateways quote the key they refused), and tokens with characters
that cannot go into an HTTP header (a key pasted with a newline), whose errors from the
HTTP layer quote the header value.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import logging
import os
import subprocess
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kling_i2v import AsyncKlingClient, KlingClient, PollPolicy, RetryPolicy
from kling_i2v.batch import BatchOptions, run_batch
from kling_i2v.manifest import read_rows
from kling_i2v.testing import FakeGateway, Fault, SimulatedClock, sample_image_path
from kling_i2v.testing.assets import sample_video_bytes

from tests.hostile import figures
from tests.scripted_server import Reply, ScriptedServer, scripted_server

CANARY = "sk-canary-5f1d0c8e9a7b4c3d2e1f"
URL_IMAGE = "https://example.com/cat.png"
QUERY = {"code": "success", "data": {"task_id": "1", "status": "IN_PROGRESS", "progress": "30%"}}
FAILED = {"code": "success", "data": {"task_id": "1", "status": "FAILURE", "fail_reason": "nope"}}
CREATED = {"id": "1", "task_id": "1", "object": "video", "status": "queued", "progress": 0}

tally: Counter[str] = Counter()
leaks: list[str] = []


def forms(secret: str) -> list[str]:
    """The ways a token could be written down."""
    return [secret, base64.b64encode(secret.encode()).decode(), quote(secret, safe=""),
            base64.b64encode(f"Bearer {secret}".encode()).decode()]


def scan(where: str, text: str | bytes, secret: str = CANARY) -> None:
    tally["texts_scanned"] += 1
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if any(form in data for form in forms(secret)):
        tally["leaks"] += 1
        leaks.append(where)


def scan_error(where: str, error: BaseException, secret: str = CANARY) -> None:
    tally["errors_scanned"] += 1
    scan(f"{where}: str", str(error), secret)
    scan(f"{where}: repr", repr(error), secret)
    scan(f"{where}: traceback", "".join(traceback.format_exception(error)), secret)
    for name, value in vars(error).items():
        scan(f"{where}: .{name}", repr(value), secret)


def scan_files(where: str, folder: Path, secret: str = CANARY) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            tally["files_scanned"] += 1
            scan(f"{where}: {path.name}", path.read_bytes(), secret)


_report = figures.report_after("token_secrecy", lambda: {
    "scenarios": tally["scenarios"],
    "errors_scanned": tally["errors_scanned"],
    "log_records_scanned": tally["log_records"],
    "cli_runs": tally["cli_runs"],
    "files_scanned": tally["files_scanned"],
    "texts_scanned": tally["texts_scanned"],
    "leaks": tally["leaks"],
    "leaked_in": sorted(set(leaks))[:20],
})


def assert_no_leaks(start: int) -> None:
    assert leaks[start:] == [], f"the token leaked: {leaks[start:]}"


@contextmanager
def debug_logs(where: str, secret: str = CANARY) -> Iterator[None]:
    """Every logger at DEBUG into a buffer, scanned at the end."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "kling_i2v", "httpx", "httpcore")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        text = buffer.getvalue()
        tally["log_records"] += text.count("\n")
        scan(f"{where}: logs", text, secret)


# ============================================================================ the library

SCENARIOS: dict[str, tuple[list[Reply], str]] = {
    "401": ([Reply(401, {"error": {"message": "Invalid token", "type": "new_api_error", "code": "invalid_api_key"}})], "get"),
    "401 echoing the token": ([Reply(401, {"error": {"message": f"Incorrect API key provided: {CANARY}",
                                                     "type": "invalid_request_error", "code": "invalid_api_key"}},
                                     {"X-Request-Id": "rid-1"})], "create"),
    "429 then 200": ([Reply(429, {"code": "too_many_requests", "message": "slow down"}, {"Retry-After": "1"})] * 2
                     + [Reply(200, QUERY)], "get"),
    "429 always": ([Reply(429, {"code": "too_many_requests", "message": "slow down"})] * 4, "create"),
    "500": ([Reply(500, {"code": "internal", "message": "boom"})], "create"),
    "502 html": ([Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"})] * 4, "get"),
    "503 gateway": ([Reply(503, {"error": {"message": "no channel", "type": "x"}})] * 4, "create"),
    "reset on create": ([Reply(action="reset")], "create"),
    "reset on query": ([Reply(action="reset")] * 4, "get"),
    "timeout": ([Reply(200, QUERY, action="delay:0.5")] * 4, "get"),
    "malformed 200": ([Reply(200, "<html>proxy</html>")], "get"),
    "unreadable create": ([Reply(200, {"id": 5})], "create"),
    "unknown task": ([Reply(400, {"code": "task_not_exist", "message": "task_not_exist"})], "get"),
    "redirect elsewhere": ([Reply(302, b"", {"Location": "http://127.0.0.1:9/steal"})], "get"),
    "task failed": ([Reply(200, FAILED)], "wait"),
    "wait timeout": ([Reply(200, QUERY)] * 50, "wait"),
    "download 404": ([Reply(404, b"Not Found", {"Content-Type": "text/plain"})], "download"),
    "download ok": ([Reply(200, sample_video_bytes(), {"Content-Type": "video/mp4"})], "download"),
    "invalid request": ([], "invalid"),
}


def _call(client: KlingClient, call: str, server: ScriptedServer, tmp: Path) -> Any:
    if call == "get":
        return client.get("1")
    if call == "create":
        return client.create(image=URL_IMAGE, prompt="p")
    if call == "wait":
        return client.wait("1", timeout=30)
    if call == "download":
        return client.download(server.base_url + "/files/1.mp4", tmp / "v.mp4", overwrite=True)
    return client.create(image=URL_IMAGE, prompt="p" * 3000, cfg_scale=7, callback_url="nope")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_library_error_paths_keep_the_token_out(name: str, tmp_path: Path) -> None:
    start = len(leaks)
    replies, call = SCENARIOS[name]
    tally["scenarios"] += 1
    with scripted_server() as server, debug_logs(name):
        server.script(*replies)
        http = httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(0.2))
        client = KlingClient(CANARY, base_url=server.base_url, max_retries=3, http_client=http,
                             clock=SimulatedClock(), poll=PollPolicy(initial_interval=1, max_interval=1))
        with client:
            try:
                result = _call(client, call, server, tmp_path)
                scan(f"{name}: result", repr(result))
                scan(f"{name}: result str", str(result))
            except Exception as error:  # noqa: BLE001 - every error is scanned
                scan_error(name, error)
            for text in (repr(client), str(client), repr(vars(client)), repr(vars(client._core)),
                         repr(client._core.auth), repr(http.auth)):
                scan(f"{name}: client repr", text)
        http.close()
        if server.seen:
            assert server.seen[0].headers.get("authorization") == f"Bearer {CANARY}"
    assert_no_leaks(start)


def test_the_async_client_keeps_the_token_out() -> None:
    start = len(leaks)
    tally["scenarios"] += 1

    async def main(server: ScriptedServer) -> None:
        async with AsyncKlingClient(CANARY, base_url=server.base_url, max_retries=0) as client:
            scan("async: repr", repr(client) + repr(vars(client)))
            for call in (client.get("1"), client.create(image=URL_IMAGE, prompt="p"), client.get("1")):
                try:
                    await call
                except Exception as error:  # noqa: BLE001
                    scan_error("async", error)

    with scripted_server() as server, debug_logs("async"):
        server.script(Reply(401, {"error": {"message": f"bad key {CANARY}"}}), Reply(action="reset"),
                      Reply(500, "<html>x</html>"))
        asyncio.run(main(server))
    assert_no_leaks(start)


@pytest.mark.parametrize("token", [
    f"{CANARY}\nX-Injected: 1", f"{CANARY}\x00", f"sk-canary\r\n{CANARY}", f"{CANARY}\x7f", f"{CANARY} tail",
    f"{CANARY}é",
])
def test_a_token_that_cannot_be_a_header_value_is_not_quoted_back(token: str) -> None:
    """The HTTP layer refuses such a header with a message that quotes it whole."""
    start = len(leaks)
    tally["scenarios"] += 1
    with scripted_server() as server, debug_logs(f"bad token {token!r}", secret=token.strip()), \
            debug_logs(f"bad token {token!r} (canary part)"):
        server.script(Reply(200, QUERY), Reply(200, QUERY))
        try:
            with KlingClient(token, base_url=server.base_url, max_retries=0) as client:
                client.get("1")
        except Exception as error:  # noqa: BLE001
            scan_error(f"bad token {token!r}", error, secret=token.strip())
            scan_error(f"bad token {token!r} (canary part)", error)
    assert_no_leaks(start)


def test_configuration_errors_keep_the_token_out(monkeypatch: pytest.MonkeyPatch) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    with debug_logs("configuration"):
        for base_url in ("http://evil.example", "ftp://127.0.0.1", "http://", "not a url"):
            try:
                KlingClient(CANARY, base_url=base_url).close()
            except Exception as error:  # noqa: BLE001
                scan_error(f"base url {base_url}", error)
    assert_no_leaks(start)


# ============================================================================ the CLI


def cli(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    tally["cli_runs"] += 1
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANYFAST_")}
    environment |= {"ANYFAST_API_KEY": CANARY, "NO_COLOR": "1", "COLUMNS": "200"} | (env or {})
    return subprocess.run([sys.executable, "-m", "kling_i2v.cli", *args], capture_output=True,
                          text=True, env=environment, cwd=cwd, timeout=timeout, check=False)


def _scan_run(where: str, run: subprocess.CompletedProcess[str]) -> None:
    scan(f"cli {where}: stdout", run.stdout)
    scan(f"cli {where}: stderr", run.stderr)


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(tokens=[CANARY], time_scale=1000) as gw:
        yield gw


CLI_CASES: list[tuple[str, Callable[[FakeGateway], None] | None, list[str]]] = [
    ("create --wait --out", None, ["create", "{image}", "--prompt", "p", "--wait", "--out", "{tmp}/v.mp4",
                                   "--poll-interval", "0.05"]),
    ("status of an unknown task", None, ["status", "nope"]),
    ("429 on create", lambda gw: gw.inject(Fault.status(429), on="create", times=None), ["create", "{image}", "--prompt", "p"]),
    ("5xx on status", lambda gw: gw.inject(Fault.status(502), on="query", times=None), ["status", "1"]),
    ("reset on create", lambda gw: gw.inject(Fault.reset_before_response(), on="create"), ["create", "{image}", "--prompt", "p"]),
    ("invalid request", None, ["create", "{image}", "--prompt", "p", "--cfg-scale", "7"]),
    ("download of a missing task", None, ["download", "nope", "--out", "{tmp}/x.mp4"]),
]


@pytest.mark.parametrize("json_mode", [False, True], ids=["human", "json"])
@pytest.mark.parametrize(("name", "arrange", "args"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_with_debug_keeps_the_token_out(
    gateway: FakeGateway, tmp_path: Path, name: str, arrange: Callable[[FakeGateway], None] | None,
    args: list[str], json_mode: bool,
) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    gateway.clear_faults()
    if arrange is not None:
        arrange(gateway)
    argv = [a.format(image=sample_image_path(), tmp=tmp_path) for a in args]
    argv += ["--base-url", gateway.base_url, "--debug"] + (["--json"] if json_mode else [])
    run = cli(argv, cwd=tmp_path)
    gateway.clear_faults()
    _scan_run(name, run)
    scan_files(f"cli {name}", tmp_path)
    assert run.stderr or run.stdout
    assert_no_leaks(start)


def test_cli_with_the_token_on_the_command_line_and_a_gateway_that_echoes_it(tmp_path: Path) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    with scripted_server() as server:
        server.script(*[Reply(401, {"error": {"message": f"Incorrect API key provided: {CANARY}",
                                              "code": "invalid_api_key"}})] * 4)
        for extra in ([], ["--json"]):
            run = cli(["status", "1", "--token", CANARY, "--base-url", server.base_url, "--debug", *extra],
                      env={"ANYFAST_API_KEY": ""}, cwd=tmp_path)
            _scan_run("echoing gateway", run)
            assert run.returncode != 0
    assert_no_leaks(start)


def test_cli_refusing_an_insecure_base_url_keeps_the_token_out(tmp_path: Path) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    run = cli(["status", "1", "--base-url", "http://evil.example", "--debug"], cwd=tmp_path)
    _scan_run("insecure base url", run)
    assert run.returncode != 0
    assert_no_leaks(start)


# ============================================================================ the batch


def _manifest(folder: Path, rows: int) -> Path:
    path = folder / "shots.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "prompt"])
        for i in range(rows):
            writer.writerow([f"https://images.example/{i}.png", f"shot {i}" + (" [fake:fail]" if i == 3 else "")])
    return path


def test_batch_journal_and_logs_keep_the_token_out(tmp_path: Path) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    out = tmp_path / "videos"
    with FakeGateway(tokens=[CANARY], time_scale=1000, seed=7) as gw, debug_logs("batch"):
        gw.set_fault_rates({"429": 0.1, "5xx": 0.1, "reset": 0.05, "drop_after_create": 0.05}, seed=7)
        rows = read_rows(_manifest(tmp_path, 12))

        async def run() -> Any:
            async with AsyncKlingClient(CANARY, base_url=gw.base_url, retry=RetryPolicy(max_retries=0)) as kling:
                return await run_batch(rows, kling, out, BatchOptions(
                    concurrency=4, poll_interval=0.05, timeout=60,
                    backoff=RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retry_after=0.02)))

        result = asyncio.run(run())
        scan("batch result", repr(result))
        for request in gw.requests:
            scan("fake gateway record", repr(request))
    scan_files("batch", tmp_path)
    assert_no_leaks(start)


def test_batch_against_a_gateway_that_echoes_the_token_keeps_it_out_of_the_journal(tmp_path: Path) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    out = tmp_path / "videos"
    with scripted_server() as server, debug_logs("batch echo"):
        server.script(*[Reply(401, {"error": {"message": f"Incorrect API key provided: {CANARY}"}})] * 10)
        rows = read_rows(_manifest(tmp_path, 3))

        async def run() -> Any:
            async with AsyncKlingClient(CANARY, base_url=server.base_url, retry=RetryPolicy(max_retries=0)) as kling:
                return await run_batch(rows, kling, out, BatchOptions(concurrency=1, poll_interval=0.05, timeout=30))

        result = asyncio.run(run())
        scan("batch echo result", repr(result))
        if result.error is not None:
            scan_error("batch echo error", result.error)
    scan_files("batch echo", tmp_path)
    assert_no_leaks(start)


def test_cli_batch_with_debug_keeps_the_token_out(gateway: FakeGateway, tmp_path: Path) -> None:
    start = len(leaks)
    tally["scenarios"] += 1
    gateway.clear_faults()
    manifest = _manifest(tmp_path, 4)
    for extra in ([], ["--json"]):
        out = tmp_path / f"out{len(extra)}"
        run = cli(["batch", str(manifest), "--out", str(out), "--concurrency", "2", "--poll-interval", "0.05",
                   "--base-url", gateway.base_url, "--debug", *extra], cwd=tmp_path, timeout=120)
        _scan_run("batch", run)
    scan_files("cli batch", tmp_path)
    assert_no_leaks(start)
