"""What a short-lived program loads: `kling-i2v status ID --json` and a sync client's first
call load neither the terminal UI (rich), the batch machinery (asyncio, sqlite3, the
runner), nor anything else they do not use (issue 12: the command took 1.59x a one-shot
httpx GET, much of it imports).

Each check runs in a fresh interpreter, against the fake gateway on loopback. `click` is
blocked there: httpx imports its own command line (click, rich, pygments) whenever click
is installed, as it is in this dev environment (schemathesis brings it); a user's install
of kling-i2v has no click, and it is kling-i2v's own imports that are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import kling_i2v
from kling_i2v.testing import FakeGateway

# What none of these programs needs. Each one was loaded by `status --json` before (12).
NOT_NEEDED = ("rich", "asyncio", "sqlite3", "kling_i2v._runner", "kling_i2v.batchfolder",
              "kling_i2v._engine", "kling_i2v.tasklog")

_PROBE = """
import json, sys
sys.modules["click"] = None  # see the module docstring
{body}
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(body: str, gateway: FakeGateway) -> set[str]:
    env = {**os.environ, "ANYFAST_API_KEY": gateway.token, "ANYFAST_BASE_URL": gateway.base_url}
    done = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded: set[str] = set(json.loads(done.stdout.splitlines()[-1]))
    return loaded


def _task(gateway: FakeGateway) -> str:
    with kling_i2v.KlingClient(gateway.token, base_url=gateway.base_url) as kling:
        return kling.create(image="https://example.com/cat.png", prompt="the cat jumps").task_id


def test_status_json_loads_no_ui_and_no_batch(fake_gateway: FakeGateway) -> None:
    task_id = _task(fake_gateway)
    loaded = _modules_after(
        "from kling_i2v.cli import main\n"
        f"code = main(['status', {task_id!r}, '--json'])\n"
        "assert code == 0, code\n", fake_gateway)
    assert "kling_i2v.cli._task" in loaded  # the command did run, through the CLI
    assert sorted(set(NOT_NEEDED) & loaded) == []


def test_a_sync_clients_first_call_loads_no_asyncio(fake_gateway: FakeGateway) -> None:
    task_id = _task(fake_gateway)
    loaded = _modules_after(
        "from kling_i2v import KlingClient\n"
        f"with KlingClient() as kling: kling.get({task_id!r})\n", fake_gateway)
    assert "kling_i2v.client" in loaded
    assert sorted(set(NOT_NEEDED) & loaded) == []


def test_import_alone_loads_no_http_engine(fake_gateway: FakeGateway) -> None:
    """httpx loads httpcore (with h11 and anyio) when the first client is made; so does
    kling_i2v (its deadline-aware sync transport is built then), not at import."""
    loaded = _modules_after("import kling_i2v\n", fake_gateway)
    assert sorted(({"httpcore", "h11", "anyio"} | set(NOT_NEEDED)) & loaded) == []


def test_the_probe_sees_an_import(fake_gateway: FakeGateway) -> None:
    """The check above can fail: a program that does load the batch is seen."""
    loaded = _modules_after("import kling_i2v.batch\nkling_i2v.batch.run_batch\n"
                            "kling_i2v.batch.KILL_AT_ENV\n", fake_gateway)
    assert {"asyncio", "kling_i2v._runner"} <= loaded
    assert "httpcore" in _modules_after("import kling_i2v\nkling_i2v.KlingClient()\n", fake_gateway)
