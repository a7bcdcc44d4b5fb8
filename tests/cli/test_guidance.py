"""Issue 13.5: a command line that guides. Each test is a scenario from the issue, judged
by the exit code and the lines a user sees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kling_i2v.cli import ExitCode
from kling_i2v.testing import FakeGateway

from tests.cli.conftest import Cli


def _child(*args: str, gateway: FakeGateway, cwd: Path, **options) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "ANYFAST_BASE_URL": gateway.base_url, "ANYFAST_API_KEY": gateway.token}
    return subprocess.Popen([sys.executable, "-m", "kling_i2v.cli", *args], cwd=cwd, env=env,
                            text=True, **options)


def test_ctrl_c_after_create_wait_out_keeps_the_out(fake_gateway: FakeGateway, good_image: Path,
                                                    tmp_path: Path) -> None:
    child = _child("create", str(good_image), "--prompt", "slow [fake:seconds=100000]", "--wait",
                   "--out", "c3.mp4", "--poll-interval", "0.05", gateway=fake_gateway, cwd=tmp_path,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while fake_gateway.count(on="query") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    (task_id,) = fake_gateway.tasks
    assert child.returncode == ExitCode.INTERRUPTED
    assert (f"interrupted; task {task_id} keeps running on the gateway: kling-i2v wait {task_id} "
            "--out c3.mp4 --poll-interval 0.05") in " ".join(err.split())
    assert "Traceback" not in err


def test_a_timeout_hint_keeps_the_options(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    run = cli("create", str(good_image), "--prompt", "slow [fake:seconds=100000]", "--out", "videos/",
              "--timeout", "0.3", "--poll-interval", "0.05")
    assert run.code == ExitCode.NOT_FINISHED
    (task_id,) = fake_gateway.tasks
    # the short --timeout that just ran out is not repeated (it would run out again)
    assert (f"it may still finish: kling-i2v wait {task_id} --out videos/ "
            f"--poll-interval 0.05 --base-url {fake_gateway.base_url}") in run.text
    assert fake_gateway.token not in run.text


def test_an_unknown_column_suggests_the_right_one(cli: Cli, fake_gateway: FakeGateway,
                                                  good_image: Path) -> None:
    Path("shots.csv").write_text("image,promt\ncat.png,x\n")
    run = cli("batch", "shots.csv", "--out", "v")
    assert run.code == ExitCode.INVALID_INPUT
    assert "unknown column 'promt' — did you mean 'prompt'?" in run.err
    Path("shots.jsonl").write_text('{"image": "cat.png", "negativ_prompt": "x", "prompt": "y"}\n')
    run = cli("batch", "shots.jsonl", "--out", "v")
    assert "shots.jsonl:1: unknown column 'negativ_prompt' — did you mean 'negative_prompt'?" in run.err
    assert fake_gateway.requests == []


def test_a_semicolon_csv_reads_as_columns(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    # what a spreadsheet in a comma-decimal locale saves; the prompt holds a comma of its own
    Path("shots.csv").write_text("image;prompt;cfg_scale\ncat.png;the cat, then the dog;0.5\n")
    run = cli("--json", "batch", "shots.csv", "--out", "v", "--poll-interval", "0.05")
    assert run.code == ExitCode.OK, run.out
    (task,) = fake_gateway.tasks.values()
    assert task.body["prompt"] == "the cat, then the dog" and task.body["cfg_scale"] == 0.5
    Path("tabs.csv").write_text("image\tprompt\ncat.png\ta; b, c\n")
    assert cli("batch", "tabs.csv", "--out", "v", "--dry-run").code == ExitCode.OK


def test_a_closed_pipe_ends_quietly_with_0(fake_gateway: FakeGateway, tmp_path: Path) -> None:
    """`kling-i2v ... | head`: the reader is gone before the command writes."""
    for n in range(3):
        (tmp_path / f"img{n}.png").write_bytes(b"")
    for args in (["create", "--help"], ["batch", ".", "--out", "v", "--prompt", "x", "--dry-run"],
                 ["--json", "batch", ".", "--out", "v", "--prompt", "x", "--dry-run"]):
        read, write = os.pipe()
        os.close(read)
        child = _child(*args, gateway=fake_gateway, cwd=tmp_path, stdout=write, stderr=subprocess.PIPE)
        os.close(write)
        _, err = child.communicate(timeout=60)
        assert (child.returncode, err) == (0, ""), args


def test_a_wrong_base_path_gets_a_hint(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    from tests.scripted_server import Reply, scripted_server

    with scripted_server() as server:
        server.script(Reply(404, {"error": {"message": "Invalid URL (GET /v1/kling/v1/videos/image2video/1)",
                                            "type": "invalid_request_error"}}))
        run = cli("status", "1", "--base-url", server.base_url + "/v1", "--token", "sk-test-token-1",
                  connect=False)
    assert run.code == ExitCode.API_ERROR
    assert (f"check the base URL ({server.base_url}/v1): it is the gateway's root, like "
            "https://www.anyfast.ai, without /v1 or /kling") in run.text
