"""Text the command line prints that came from the server (task fields, fail_reason, error
messages, URLs) goes through `_text.clean`: no terminal escape sequence, control character
or API token reaches the terminal or a --json document, whatever the gateway sends.

The answers here carry OSC 8 hyperlinks, a title change, a screen clear, an 8-bit CSI and
the token itself, as a hostile or compromised gateway (or anything on the path) could."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode
from kling_i2v.cli._output import Output, print_task, task_json
from kling_i2v.tasks import Task, TaskStatus
from kling_i2v.testing import FakeGateway, Fault

from tests.cli.conftest import Cli, write_manifest

TOKEN = "sk-cli-server-text-4c9d2e7a"
pytestmark = pytest.mark.fake_gateway(tokens=(TOKEN,), seed=0)
FAST = ("--poll-interval", "0.05")

HOSTILE = (f"policy \x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[2J\x1b]0;title\x07"
           f"\x1b[31mred\x9b0m {TOKEN} done")
SEEN = "policy click red *** done"  # what is left of it


def _assert_clean(text: str) -> None:
    assert TOKEN not in text
    bad = [hex(ord(c)) for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]
    assert bad == [], text
    assert "\\u001b" not in text and "\\u009b" not in text  # nor escaped into JSON


def _query_reply(status: str, **fields: object) -> Fault:
    """A whole query answer in new-api's envelope (gateway-facts.md "Query")."""
    task = {"task_id": "42", "action": "image2video", "status": status, "submit_time": 1,
            "start_time": 2, "finish_time": 3, "progress": "100%", "data": None, **fields}
    body = json.dumps({"code": "success", "message": "", "data": task}).encode()
    return Fault.body(body, status=200, content_type="application/json")


def test_status_and_its_json_show_a_hostile_fail_reason_cleaned(cli: Cli, fake_gateway: FakeGateway) -> None:
    fake_gateway.inject(_query_reply("FAILURE", fail_reason=HOSTILE), on="query", times=2)
    run = cli("status", "42")
    assert run.code == ExitCode.OK, run.err
    assert f"reason    {SEEN}" in run.out
    _assert_clean(run.out + run.err)

    as_json = cli("--json", "status", "42")
    _assert_clean(as_json.out)
    assert as_json.json()["fail_reason"] == SEEN


def test_wait_shows_a_hostile_video_url_cleaned(cli: Cli, fake_gateway: FakeGateway) -> None:
    # httpx refuses a URL with ESC in it (the client then shows none); 8-bit CSI and bidi
    # overrides pass its parser
    url = f"https://cdn.example/v.mp4?sig={TOKEN}&a=\x9b2Jb\u202e"
    upstream = {"code": 0, "message": "", "request_id": "r", "data": {
        "task_id": "k42", "task_status": "succeed", "task_status_msg": "",
        "task_info": {"external_task_id": f"ext-\x1b[2J{TOKEN}"},
        "task_result": {"videos": [{"id": "v", "url": url, "duration": "5"}]}}}
    fake_gateway.inject(_query_reply("SUCCESS", data=upstream), on="query", times=2)
    run = cli("wait", "42", *FAST)
    assert run.code == ExitCode.OK, run.err
    assert "video  https://cdn.example/v.mp4?sig=***&a=b" in run.out
    _assert_clean(run.out + run.err)

    as_json = cli("--json", "wait", "42", *FAST)
    _assert_clean(as_json.out)
    assert as_json.json()["video_urls"] == ["https://cdn.example/v.mp4?sig=***&a=b"]


def test_create_shows_a_hostile_status_cleaned(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    # the create reply's status is the one server string create prints (dto.NewOpenAIVideo)
    reply = {"id": "77", "task_id": "77", "object": "video", "model": "kling-v2-master",
             "status": f"\x1b]0;owned\x07queued\x9b2J{TOKEN}", "progress": 0, "created_at": 1}
    for args in ((), ("--json",)):
        fake_gateway.inject(Fault.body(json.dumps(reply).encode(), status=200,
                                       content_type="application/json"), on="create")
        run = cli(*args, "create", str(good_image), "--prompt", "x")
        assert run.code == ExitCode.OK, run.err
        _assert_clean(run.out + run.err)
    assert run.json()["gateway_status"] == "queued***"


def test_the_batch_summary_and_its_json_show_a_hostile_reason_cleaned(cli: Cli, fake_gateway: FakeGateway,
                                                                      good_image: Path) -> None:
    # the fake fails the task with the marker's text as fail_reason; the marker ends at the
    # first "]", so the OSC here is the 8-bit one (0x9d) rather than ESC ]
    reason = f"policy \x1b[2J\x1b[31mred\x9b0m \x9d0;title\x07{TOKEN} done"
    manifest = write_manifest(good_image.parent, json.dumps(
        {"image": "cat.png", "prompt": f"jump [fake:fail={reason}]"}) + "\n", name="shots.jsonl")
    run = cli("batch", str(manifest), "--out", "videos", *FAST)
    assert run.code == ExitCode.TASK_FAILED, run.text
    assert "policy red *** done" in run.text, run.text
    _assert_clean(run.out + run.err)
    page = (Path("videos") / "index.html").read_text()
    assert "\x1b" not in page and "policy red *** done" in page  # the prompt is the user's own text

    as_json = cli("--json", "batch", str(manifest), "--out", "videos", *FAST)
    _assert_clean(as_json.out)
    (row,) = as_json.json()["rows"]
    assert row["reason"] == "policy red *** done"


def test_the_output_cleans_what_it_is_given_not_only_what_the_client_cleaned(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A Task built by hand (the client's own cleaning bypassed) still prints clean."""
    task = Task(task_id="42", status=TaskStatus.FAILED, progress=100, fail_reason=HOSTILE,
                gateway_status=f"FAIL\x1b[2J{TOKEN}", external_task_id=f"e\x9b31m{TOKEN}",
                video_urls=(f"https://x.example/\x1b]8;;y\x07{TOKEN}",))
    output = Output(json_mode=False, secret=TOKEN)
    print_task(output, task)
    Output(json_mode=True, secret=TOKEN).emit(task_json(task), lambda out: None)
    Output(json_mode=True, secret=TOKEN).error(HOSTILE, ExitCode.API_ERROR, detail=HOSTILE)
    captured = capsys.readouterr()
    _assert_clean(captured.out + captured.err)
    assert f"reason    {SEEN}" in captured.out
    documents = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert documents[0]["fail_reason"] == SEEN and documents[1]["error"]["detail"] == SEEN
