"""The `kling-i2v` command line against the fake gateway, over real HTTP on loopback.

Commands run in-process through `main(argv)` (the `cli` fixture of conftest.py) and are
judged by what a user sees: the exit code, stdout (text, or one JSON document with --json)
and stderr. The fake's own record says what reached the gateway. Batch runs are in
test_batch.py and the other files here.

Covers: cli/__init__.py, cli/_main.py, cli/_context.py, cli/_create.py, cli/_task.py,
cli/_output.py, cli/_exit.py, cli/_options.py
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode, main
from kling_i2v.fields import request_fields
from kling_i2v.testing import FakeGateway, Fault, sample_video_path
from kling_i2v.validation import enum_values, request_schema

TOKEN = "sk-cli-canary-5e1f0a9b"
FAST = ["--poll-interval", "0.05"]
# a token long enough to be redacted, so that tests can look for it in the output
pytestmark = pytest.mark.fake_gateway(tokens=(TOKEN,), seed=0)


@pytest.fixture
def gw(fake_gateway: FakeGateway) -> FakeGateway:
    return fake_gateway


@pytest.fixture
def image(good_image: Path) -> Path:
    return good_image


# ============================================================================ help


def test_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code in ExitCode:
        assert f"{code.value:>3}  {code.meaning.split()[0]}" in out
    for command in ("create", "status", "wait", "download", "batch", "fake-gateway"):
        assert command in out


def test_request_options_and_choices_come_from_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in request_schema()["properties"]:
        if name != "image":
            assert "--" + name.replace("_", "-") in out
    assert "{" + ",".join(enum_values("Mode")) + "}" in out
    assert "One of: " + ", ".join(enum_values("Duration")) in out
    assert "From 0 to 1" in out  # cfg_scale's range
    assert request_fields()["negative_prompt"].description in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from kling_i2v import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


# ============================================================================ create


def test_create_prints_the_task_and_sends_every_option(cli, gw: FakeGateway, image: Path) -> None:
    run = cli("create", str(image), "--prompt", "the cat jumps", "--mode", "pro", "--duration", "10",
              "--cfg-scale", "0.25", "--negative-prompt", "blur", "--no-multi-shot",
              "--camera-control", '{"type": "simple", "config": {"zoom": 5}}')
    assert run.code == ExitCode.OK, run.err
    (task_id, task), = gw.tasks.items()
    assert f"created task {task_id} (queued)" in run.out
    assert f"kling-i2v wait {task_id}" in run.err
    body = task.body
    assert body["mode"] == "pro" and body["duration"] == "10" and body["cfg_scale"] == 0.25
    assert body["negative_prompt"] == "blur" and body["multi_shot"] is False
    assert body["camera_control"] == {"type": "simple", "config": {"zoom": 5}}
    assert "data:" not in body["image"] and len(body["image"]) > 1000  # raw base64
    assert task.external_task_id and task.external_task_id in run.out


def test_create_json(cli, gw: FakeGateway, image: Path) -> None:
    run = cli("--json", "create", str(image), "--prompt", "hi")
    assert run.code == 0 and run.err == ""
    data = run.json()
    task = gw.tasks[data["task_id"]]
    assert data["status"] == "queued" and data["external_task_id"] == task.external_task_id


def test_create_json_option_from_file(cli, gw: FakeGateway, image: Path, tmp_path: Path) -> None:
    (tmp_path / "shots.json").write_text(json.dumps(
        [{"index": 1, "prompt": "a", "duration": "2"}, {"index": 2, "prompt": "b", "duration": "3"}]))
    run = cli("create", str(image), "--multi-shot", "--shot-type", "customize",
              "--multi-prompt", "@shots.json")
    assert run.code == 0, run.err
    (task,) = gw.tasks.values()
    assert [s["prompt"] for s in task.body["multi_prompt"]] == ["a", "b"]


def test_create_wait_out_downloads_the_video(cli, gw: FakeGateway, image: Path, tmp_path: Path) -> None:
    run = cli("create", str(image), "--prompt", "hi", "--out", "videos/cat.mp4", *FAST)
    assert run.code == 0, run.err
    video = tmp_path / "videos" / "cat.mp4"
    assert video.read_bytes() == sample_video_path().read_bytes()
    assert "succeeded" in run.out and "videos/cat.mp4" in run.out

    run = cli("--json", "create", str(image), "--prompt", "hi", "--wait", *FAST)
    data = run.json()
    assert run.code == 0 and data["status"] == "succeeded" and data["file"] is None
    assert data["video_urls"] == [gw.video_url(data["task_id"])]


def test_create_wait_on_a_failing_task(cli, image: Path) -> None:
    run = cli("create", str(image), "--prompt", "hi [fake:fail=content policy]", "--wait", *FAST)
    assert run.code == ExitCode.TASK_FAILED
    assert run.err.strip().endswith("failed: content policy") and len(run.err.strip().splitlines()) == 1
    assert run.out.startswith("created task ")  # the id, on stdout, before the failure
    run = cli("--json", "create", str(image), "--prompt", "x [fake:fail=nope]", "--wait", *FAST)
    error = run.json()["error"]
    assert run.code == 4 and error["kind"] == "task_failed" and error["task"]["fail_reason"] == "nope"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--prompt", "hi", "--cfg-scale", "3"], "--cfg-scale: must be <= 1 (got 3)"),
        (["--prompt", "hi", "--mode", "ultra"], "--mode: must be one of std, pro (got \"ultra\")"),
        (["--prompt", "hi", "--cfg-scale", "lots"], "expected a number"),
        (["--prompt", "hi", "--camera-control", "{oops"], "not valid JSON"),
        ([], "prompt is required unless multi_shot is true"),
        (["--prompt", "hi", "--image-tail", "https://e.com/t.png", "--static-mask", "https://e.com/m.png"],
         "--image-tail + --static-mask"),
    ],
)
def test_create_refuses_invalid_requests_without_sending(cli, gw: FakeGateway, image: Path,
                                                         args: list[str], says: str) -> None:
    run = cli("create", str(image), *args)
    assert run.code == ExitCode.INVALID_INPUT
    assert says in run.err and "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert gw.count() == 0


def test_create_missing_image_file(cli, gw: FakeGateway) -> None:
    run = cli("create", "nope.png", "--prompt", "hi")
    assert run.code == 2 and run.err.strip() == "kling-i2v: error: No such file or directory: nope.png"
    run = cli("--json", "create", "nope.png", "--prompt", "hi")
    assert run.json()["error"] == {"exit_code": 2, "kind": "invalid_input",
                                   "message": "No such file or directory: nope.png"}
    assert gw.count() == 0


def test_create_with_an_ambiguous_outcome(cli, gw: FakeGateway, image: Path) -> None:
    gw.inject(Fault.drop_after_create(), on="create")
    run = cli("--json", "create", str(image), "--prompt", "hi")
    assert run.code == ExitCode.AMBIGUOUS
    error = run.json()["error"]
    (task,) = gw.tasks.values()  # the gateway did create it
    assert error["external_task_id"] == task.external_task_id
    assert gw.count(on="create") == 1  # and the client did not send it twice


def test_gateway_errors(cli, gw: FakeGateway, image: Path) -> None:
    gw.inject(Fault.status(400), on="create")
    run = cli("--json", "create", str(image), "--prompt", "hi")
    assert run.code == ExitCode.API_ERROR and run.json()["error"]["status_code"] == 400


# ============================================================================ tokens


def test_no_token(cli, gw: FakeGateway) -> None:
    run = cli("status", "123", connect=False)
    assert run.code == ExitCode.INVALID_INPUT
    assert run.err.strip() == "kling-i2v: error: no API token: set ANYFAST_API_KEY (or pass --token)"


def test_bad_token_is_one_line_and_never_printed(cli, gw: FakeGateway, capsys) -> None:
    wrong = "sk-wrong-token-8d2c"
    for extra in ([], ["--debug"], ["--json"]):
        code = main(["status", "123", "--base-url", gw.base_url, "--token", wrong, *extra])
        out, err = capsys.readouterr()
        assert code == ExitCode.API_ERROR
        assert wrong not in out + err
        if not extra:
            # new-api's 401: code "", message "Invalid token (request id: ...)" (fake gateway)
            (line,) = err.strip().splitlines()
            assert re.fullmatch(
                r"kling-i2v: error: the gateway refused the API token \(HTTP 401: Invalid token "
                r"\(request id: \d+\).*\); check ANYFAST_API_KEY or --token",
                line,
            ), line
        if extra == ["--debug"]:
            assert "Traceback" in err and "AuthenticationError" in err


def test_token_from_the_environment_never_printed_with_debug(cli, gw: FakeGateway, image: Path,
                                                            monkeypatch, capsys) -> None:
    monkeypatch.setenv("ANYFAST_API_KEY", TOKEN)
    monkeypatch.setenv("ANYFAST_BASE_URL", gw.base_url)
    assert main(["--debug", "create", str(image), "--prompt", "hi", "--wait", *FAST]) == 0
    out, err = capsys.readouterr()
    assert "HTTP Request: POST" in err and TOKEN not in out + err


# ============================================================================ status, wait, download


def _created(gw: FakeGateway, image: Path, prompt: str = "hi") -> str:
    from kling_i2v import KlingClient

    with KlingClient(TOKEN, base_url=gw.base_url) as kling:
        return kling.create(image=image, prompt=prompt).task_id


def test_status(cli, gw: FakeGateway, image: Path) -> None:
    task_id = _created(gw, image, "slow [fake:seconds=1000]")
    run = cli("status", task_id)
    assert run.code == 0
    assert f"task      {task_id}" in run.out and "status    queued (NOT_START)" in run.out
    data = cli("--json", "status", task_id).json()
    assert data["task_id"] == task_id and data["status"] in ("queued", "running")


def test_status_of_an_unknown_task(cli) -> None:
    run = cli("status", "404404")
    assert run.code == ExitCode.API_ERROR and "knows no task 404404" in run.err
    assert run.err.count("\n") == 1


def test_wait(cli, gw: FakeGateway, image: Path, tmp_path: Path) -> None:
    task_id = _created(gw, image)
    run = cli("wait", task_id, *FAST)
    assert run.code == 0 and f"task {task_id} succeeded" in run.out and gw.video_url(task_id) in run.out
    run = cli("--json", "wait", task_id, "--out", "v/", *FAST)
    assert run.code == 0 and Path(run.json()["file"]) == tmp_path / "v" / f"{task_id}.mp4"


def test_wait_timeout(cli, gw: FakeGateway, image: Path) -> None:
    task_id = _created(gw, image, "slow [fake:seconds=1000]")
    run = cli("wait", task_id, "--timeout", "0.2", *FAST)
    assert run.code == ExitCode.NOT_FINISHED and f"kling-i2v wait {task_id}" in run.err
    run = cli("--json", "wait", task_id, "--timeout", "0.2", *FAST)
    assert run.json()["error"]["task_id"] == task_id


def test_download(cli, gw: FakeGateway, image: Path, tmp_path: Path) -> None:
    slow = _created(gw, image, "slow [fake:seconds=1000]")
    run = cli("download", slow)
    assert run.code == ExitCode.NOT_FINISHED and "--wait" in run.err

    task_id = _created(gw, image)
    run = cli("download", task_id, "--wait", *FAST)
    assert run.code == 0, run.err
    assert (tmp_path / f"{task_id}.mp4").read_bytes() == sample_video_path().read_bytes()
    run = cli("download", task_id)
    assert run.code == ExitCode.INVALID_INPUT and "--overwrite" in run.err
    run = cli("--json", "download", task_id, "--overwrite", "--out", "x.mp4")
    assert run.code == 0 and run.json()["file"] == str(tmp_path / "x.mp4")
    assert (tmp_path / "x.mp4").exists()

    failed = _created(gw, image, "[fake:fail=blocked]")
    time.sleep(0.2)  # 10 simulated seconds
    run = cli("download", failed)
    assert run.code == ExitCode.TASK_FAILED and "blocked" in run.err


# ============================================================================ processes


def _python_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kling_i2v.cli", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def test_fake_gateway_command(tmp_path: Path, image: Path) -> None:
    machine = _python_cli("fake-gateway", "--port", "0", "--time-scale", "100", "--json")
    human = _python_cli("fake-gateway", "--port", "0", "--accept-token", "sk-mine")
    try:
        assert machine.stdout is not None and human.stdout is not None
        where = json.loads(machine.stdout.readline())
        assert where["token"] == "sk-fake" and where["base_url"].startswith("http://127.0.0.1:")
        exports = [human.stdout.readline().strip() for _ in range(2)]
        assert exports[0].startswith("export ANYFAST_BASE_URL=http://127.0.0.1:")
        assert exports[1] == "export ANYFAST_API_KEY=sk-mine"

        env = {"ANYFAST_BASE_URL": where["base_url"], "ANYFAST_API_KEY": where["token"]}
        done = subprocess.run([sys.executable, "-m", "kling_i2v.cli", "--json", "create", str(image),
                               "--prompt", "hi", "--out", str(tmp_path / "v.mp4"), *FAST],
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=30,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "succeeded"
    finally:
        for server in (machine, human):
            server.send_signal(signal.SIGINT)
        assert machine.wait(timeout=10) == 0 and human.wait(timeout=10) == 0


def test_ctrl_c_while_waiting(gw: FakeGateway, image: Path) -> None:
    task_id = _created(gw, image, "slow [fake:seconds=10000]")
    waiter = _python_cli("wait", task_id, *FAST, env={"ANYFAST_BASE_URL": gw.base_url,
                                                      "ANYFAST_API_KEY": TOKEN})
    deadline = time.monotonic() + 20
    while gw.count(on="query") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    waiter.send_signal(signal.SIGINT)
    _, err = waiter.communicate(timeout=10)
    assert waiter.returncode == ExitCode.INTERRUPTED
    assert f"task {task_id} keeps running on the gateway: kling-i2v wait {task_id}" in err
    assert "Traceback" not in err


def test_a_bad_json_lines_row_gets_one_clear_problem(cli, gw: FakeGateway, image: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(f'{{"image": "{image}", "prompt": "ok"}}\nnot json\n')
    run = cli("batch", str(manifest), "--out", "videos")
    assert run.code == ExitCode.INVALID_INPUT
    assert "not JSON" in run.err
    assert "image_tail" not in run.err and "external_task_id" not in run.err
    assert gw.count(on="create") == 0


def test_an_unwritable_out_is_refused_before_anything_is_paid_for(
    cli, gw: FakeGateway, image: Path, tmp_path: Path
) -> None:
    (tmp_path / "taken.mp4").write_bytes(b"mine")
    run = cli("create", str(image), "--prompt", "p", "--out", "taken.mp4")
    assert run.code == ExitCode.INVALID_INPUT and "--overwrite" in run.err
    run = cli("create", str(image), "--prompt", "p", "--out", "taken.mp4/x.mp4")  # under a file
    assert run.code == ExitCode.INVALID_INPUT and "cannot write" in run.err
    assert gw.count(on="create") == 0
    assert (tmp_path / "taken.mp4").read_bytes() == b"mine"
