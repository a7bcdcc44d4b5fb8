"""The command line's words after a new user's trial: plain words instead of Python's,
and a next step that works (fix round C).

Covers: _jsonwords.py, cli/_batch_output.py
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kling_i2v import APIConnectionError
from kling_i2v._http import transport_error
from kling_i2v.cli import ExitCode

from tests.cli.conftest import DEAD_GATEWAY, Cli


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------- C1: wrong port


def test_a_refused_connection_is_said_in_plain_words(make_client: Callable[..., Any]) -> None:
    # both clients: the async one says "All connection attempts failed" and keeps the
    # refused connect one link further down
    client = make_client("a-token-for-tests", base_url=f"http://127.0.0.1:{_free_port()}",
                         max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        client.get("123")
    assert str(caught.value) == "connection to the gateway failed: connection refused"
    assert caught.value.request_sent is False


def test_a_host_name_not_found_is_said_in_plain_words() -> None:
    # no DNS lookup in a test: the chain httpx raises (ConnectError from httpcore's from
    # socket.gaierror), built by hand
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as low:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from low
    except httpx.ConnectError as error:
        result = transport_error(error, None)
    assert str(result) == ("connection to the gateway failed: the host name was not found "
                           "(check its spelling)")


def test_an_error_without_errno_keeps_its_words() -> None:
    result = transport_error(httpx.RemoteProtocolError("Server disconnected"), None)
    assert str(result) == "connection to the gateway failed (RemoteProtocolError: Server disconnected)"


def test_a_wrong_port_says_what_to_check(cli: Cli) -> None:
    port_url = f"http://127.0.0.1:{_free_port()}"
    run = cli("status", "123", "--base-url", port_url, "--token", "a-token-for-tests", connect=False)
    assert run.code == ExitCode.API_ERROR
    assert run.text == (f"kling-i2v: error: connection to the gateway failed: connection refused "
                        f"(gateway: {port_url}); is the gateway running there? check the address "
                        "in --base-url or ANYFAST_BASE_URL")
    assert "Errno" not in run.err


def test_the_environment_gateway_is_named_when_no_option_is(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYFAST_API_KEY", "a-token-for-tests")
    run = cli("status", "123", connect=False)
    assert f"(gateway: {DEAD_GATEWAY}); is the gateway running there?" in run.text


# --------------------------------------------------------------------- C2: Python's words


@pytest.mark.parametrize(("text", "words"), [
    ("{'a': 1}", 'not valid JSON: a key in "double quotes" was expected at line 1, column 2'),
    ("", ('not valid JSON: a value was expected (a number, "text", true, false, null, [...] or '
         "{...}) at line 1, column 1")),
    ('{"a" 1}', "not valid JSON: a : was expected after the key at line 1, column 6"),
    ("[1 2]", "not valid JSON: a , was expected between two items at line 1, column 4"),
    ('[\n "abc', "not valid JSON: a text in quotes is not closed at line 2, column 2"),
    ("[1] x", "not valid JSON: there is more after the end of the JSON value at line 1, column 5"),
    ('"\\q"', ("not valid JSON: a backslash starts no valid escape (write \\\\ for a backslash) "
              "at line 1, column 2")),
])
def test_json_errors_are_told_in_plain_words(text: str, words: str) -> None:
    import json

    from kling_i2v._jsonwords import json_problem

    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(text)
    assert json_problem(caught.value) == words


def test_bad_json_in_an_option_is_told_in_plain_words(cli: Cli, good_image: Any) -> None:
    run = cli("create", str(good_image), "--prompt", "x", "--dynamic-masks", "{'a':1}")
    assert run.code == ExitCode.INVALID_INPUT
    assert ('argument --dynamic-masks: not valid JSON: a key in "double quotes" was expected '
            """at line 1, column 2, got "{'a':1}\"""") in run.text
    assert "Expecting" not in run.text and "char 1" not in run.text


def test_a_missing_brushes_file_is_told_in_plain_words(cli: Cli, good_image: Any, tmp_path: Any) -> None:
    (tmp_path / "shots.csv").write_text(f"image,prompt,motion_brushes\n{good_image},hi,mbb/nofile.json\n")
    run = cli("batch", "shots.csv", "--out", "videos", "--dry-run")
    assert "shots.csv:2: motion_brushes: cannot read mbb/nofile.json: no such file or directory" \
        in run.text, run.text
    assert "Errno" not in run.text


def test_bad_json_in_a_brushes_file_names_line_and_column(cli: Cli, good_image: Any,
                                                          tmp_path: Any) -> None:
    (tmp_path / "b.json").write_text('[\n  {"box": [1, 2, 3, 4] "path": []}\n]\n')
    (tmp_path / "shots.csv").write_text(f"image,prompt,motion_brushes\n{good_image},hi,b.json\n")
    run = cli("batch", "shots.csv", "--out", "videos", "--dry-run")
    assert ("b.json: not valid JSON: a , was expected between two items at line 2, column 24 "
            r"""(got "{\"box\": [1, 2, 3, 4] \"path\": []}")""") in run.text, run.text


# --------------------------------------------------------------------- C3: the wait hint


@pytest.mark.parametrize(("given", "carried"), [
    (1.0, []),  # the 1 s that just ran out would run out again at once
    (None, []),
    (1e9, ["--timeout", "1e+09"]),  # a longer wait the user chose is kept
])
def test_the_wait_hint_carries_a_timeout_only_when_longer_than_the_default(
        given: float | None, carried: list[str]) -> None:
    import argparse
    import shlex

    from kling_i2v.cli._context import wait_command

    hint = shlex.split(wait_command(argparse.Namespace(timeout=given), "42"))
    assert hint == ["kling-i2v", "wait", "42", *carried]


def test_a_timed_out_wait_hint_does_not_repeat_the_short_timeout(cli: Cli, good_image: Any) -> None:
    run = cli("create", str(good_image), "--prompt", "slow [fake:seconds=100000]", "--wait", "--timeout", "1",
              "--poll-interval", "0.05")
    assert run.code == ExitCode.NOT_FINISHED
    assert "it may still finish: kling-i2v wait" in run.text and "--timeout" not in run.text


# --------------------------------------------------------------------- C4: gallery's folder


def test_gallery_says_the_folder_does_not_exist(cli: Cli, tmp_path: Any) -> None:
    run = cli("gallery", "nonexist", connect=False)
    assert run.code == ExitCode.INVALID_INPUT
    assert run.text == ("kling-i2v: error: this folder does not exist (give the batch's --out "
                        "folder): nonexist")
    (tmp_path / "afile").write_text("x")
    run = cli("gallery", "afile", connect=False)
    assert run.text == "kling-i2v: error: this is not a folder (give the batch's --out folder): afile"
    run = cli("gallery", ".", connect=False)  # a folder, but no batch ran there
    assert "no batch journal" in run.text and "does not exist" not in run.text


# --------------------------------------------------------------------- C5: ids are not wrapped


def test_ids_in_the_tables_are_never_wrapped_at_80_columns(
        cli: Cli, fake_gateway: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_i2v.testing import Fault, sample_image_path

    monkeypatch.setenv("COLUMNS", "80")
    folder = tmp_path / "a-rather-long-folder-name-for-the-images-of-this-batch"
    folder.mkdir()
    image = folder / "a_long_image_file_name_that_takes_up_room.png"
    image.write_bytes(sample_image_path().read_bytes())
    (tmp_path / "shots.csv").write_text(f"image,prompt\n{image},hi\n")
    fake_gateway.inject(Fault.drop_after_create(), on="create")  # ambiguous: answer lost
    run = cli("batch", "shots.csv", "--out", "videos", "--poll-interval", "0.05")
    assert run.code == ExitCode.AMBIGUOUS, run.text
    (task,) = fake_gateway.tasks.values()
    assert task.external_task_id and len(task.external_task_id) > 20
    table = run.out.split("ambiguous: a task may exist", 1)[1].split("look for each", 1)[0]
    assert any(task.external_task_id in line for line in table.splitlines()), run.out
    assert max(map(len, table.splitlines())) <= 80, run.out  # the other columns gave way


# --------------------------------------------------------------------- C6: fake-gateway --help


def test_fake_gateway_help_shows_only_its_own_options_and_exit_codes(
        capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from kling_i2v.cli import main

    assert main(["fake-gateway", "--help"]) == 0
    text = capsys.readouterr().out
    options = text.split("exit codes:", 1)[0]
    assert "--base-url" not in options and "API token" not in options and "--debug" not in options
    assert "--token TOKEN, --accept-token TOKEN" in text and "--json" in text
    codes = re.findall(r"^ +(\d+)  ", text.split("exit codes:", 1)[1], re.MULTILINE)
    assert codes == ["0", "1", "2"], text
    assert "stopped by Ctrl-C or SIGTERM" in text and "the port is already in use" in text


def test_other_commands_keep_the_common_options_and_every_exit_code(
        capsys: pytest.CaptureFixture[str]) -> None:
    from kling_i2v.cli import main

    assert main(["status", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--base-url" in text and "  6  a create was sent" in " ".join(text.split("\n"))


# --------------------------------------------------------------------- C7: resume, after what


def _three_rows(tmp_path: Any) -> None:
    from kling_i2v.testing import sample_image_path

    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    (tmp_path / "shots.csv").write_text("image,prompt\ncat.png,a\ncat.png,b\ncat.png,c\n")


def test_a_wrong_token_says_to_fix_it_before_resuming(cli: Cli, fake_gateway: Any, tmp_path: Any) -> None:
    _three_rows(tmp_path)
    run = cli("batch", "shots.csv", "--out", "videos", "--base-url", fake_gateway.base_url,
              "--token", "not-the-fakes-token", connect=False)
    assert run.code == ExitCode.API_ERROR, run.text
    assert ("3 row(s) not finished: fix the API token first (ANYFAST_API_KEY or --token), then "
            "run the same command again to resume") in run.text


def test_a_short_balance_says_to_top_up_before_resuming(cli: Cli, fake_gateway: Any,
                                                        tmp_path: Any) -> None:
    _three_rows(tmp_path)
    fake_gateway.set_balance(0)  # new-api: 403 insufficient_user_quota (gateway-facts.md "Errors")
    run = cli("batch", "shots.csv", "--out", "videos", "--poll-interval", "0.05")
    assert run.code == ExitCode.API_ERROR, run.text
    assert ("3 row(s) not finished: top up the account's balance first, then run the same "
            "command again to resume") in run.text


def test_a_batch_stopped_for_no_reason_to_fix_just_says_resume() -> None:
    from kling_i2v.cli._batch_output import _resume_hint
    from kling_i2v.errors import APIConnectionError

    assert _resume_hint(None) == "run the same command again to resume"
    # a connection lost after the request went out: nothing to fix, just run again
    assert _resume_hint(APIConnectionError("reset", request_sent=True)) == \
        "run the same command again to resume"
    assert _resume_hint(APIConnectionError("refused", request_sent=False)).startswith(
        "check that the gateway can be reached (--base-url or ANYFAST_BASE_URL)")
