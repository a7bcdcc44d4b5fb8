"""The one way to start the fake gateway: `python -m kling_i2v.testing` and
`kling-i2v fake-gateway` take the same flags and behave the same, as processes.

Covers: cli/_fake.py, testing/_cli.py, testing/__main__.py, testing/defaults.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.testing.test_fake_gateway import BODY, CREATE

ENTRY_POINTS = {
    "python -m": [sys.executable, "-m", "kling_i2v.testing"],
    "kling-i2v": [str(Path(sys.executable).with_name("kling-i2v")), "fake-gateway"],
}


def start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("flag", ["--token", "--accept-token"])
def test_both_entry_points_print_exports_accept_the_token_and_stop_on_sigterm(
    entry: str, flag: str
) -> None:
    process = start([*ENTRY_POINTS[entry], "--port", "0", flag, "sk-cli", "--task-seconds", "1000",
                     "--max-running", "1", "--dialect", "new-api-U"])
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip().removeprefix("export ANYFAST_BASE_URL=")
        token = process.stdout.readline().strip().removeprefix("export ANYFAST_API_KEY=")
        assert base_url.startswith("http://127.0.0.1:") and token == "sk-cli"
        headers = {"Authorization": f"Bearer {token}"}
        first = httpx.post(base_url + CREATE, json=BODY, headers=headers)
        assert first.status_code == 200 and first.json()["task_id"].startswith("task_")
        assert httpx.post(base_url + CREATE, json=BODY, headers=headers).status_code == 429
        wrong = httpx.post(base_url + CREATE, json=BODY, headers={"Authorization": "Bearer sk-fake"})
        assert wrong.status_code == 401  # the default token is replaced, not added
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_port_in_use_is_one_line_naming_the_port(entry: str, taken_port: int) -> None:
    done = subprocess.run([*ENTRY_POINTS[entry], "--port", str(taken_port)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"port {taken_port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_bad_fault_rate_is_a_usage_error(entry: str) -> None:
    done = subprocess.run([*ENTRY_POINTS[entry], "--port", "0", "--fault-rate", "teapot=0.5"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown fault rate keys ['teapot']" in done.stderr
    assert "Traceback" not in done.stderr
