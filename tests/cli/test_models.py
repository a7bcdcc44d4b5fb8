"""Issue 10's command line: the model is always named, capability warnings come before
anything is sent, and a model the spec does not list goes out only when asked for."""

from __future__ import annotations

from pathlib import Path

from kling_i2v.capabilities import default_model, model_names
from kling_i2v.cli import ExitCode, main
from kling_i2v.testing import FakeGateway

from tests.cli.conftest import Cli, write_manifest


def test_model_name_option_shows_its_default_and_the_models(capsys) -> None:
    assert main(["create", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--model-name MODEL_NAME" in text
    assert f"Gateway default: {default_model()}." in text or f"default: {default_model()}" in text
    assert "One of: " + ", ".join(model_names()) in text


def test_sound_on_a_model_that_has_it_passes_without_a_warning(cli: Cli, fake_gateway: FakeGateway,
                                                              good_image: Path) -> None:
    run = cli("create", str(good_image), "--prompt", "x", "--model-name", "kling-v2-6", "--sound", "on",
              "--mode", "pro")
    assert run.code == ExitCode.OK, run.err
    assert "warning" not in run.err
    (task,) = fake_gateway.tasks.values()
    assert task.body["model_name"] == "kling-v2-6" and task.body["sound"] == "on"


def test_sound_on_kling_v2_master_warns_before_sending(cli: Cli, fake_gateway: FakeGateway,
                                                      good_image: Path) -> None:
    run = cli("create", str(good_image), "--prompt", "x", "--model-name", "kling-v2-master",
              "--sound", "on")
    assert run.code == ExitCode.OK, run.err
    first = run.err.splitlines()[0]
    assert first.startswith("warning: sound 'on': kling-v2-master does not support sound")
    assert "the request is sent anyway" in first
    assert len(fake_gateway.tasks) == 1


def test_a_model_the_spec_does_not_list_is_refused(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    run = cli("create", str(good_image), "--prompt", "x", "--model-name", "kling-v9")
    assert run.code == ExitCode.INVALID_INPUT
    assert "--model-name: must be one of kling-v2-master" in run.err
    # the option, not the Python keyword, and the value refused
    assert '(got "kling-v9"); to send it anyway, pass --allow-unknown-model' in run.err, run.err
    assert "allow_unknown_model" not in run.err and "warning" not in run.err
    assert fake_gateway.count(on="create") == 0



def test_the_default_model_is_sent(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    assert cli("create", str(good_image), "--prompt", "x").code == ExitCode.OK
    (task,) = fake_gateway.tasks.values()
    assert task.body["model_name"] == default_model() == "kling-v2-master"


def test_an_unlisted_model_is_sent_with_a_warning_when_allowed(cli: Cli, fake_gateway: FakeGateway,
                                                               good_image: Path) -> None:
    run = cli("create", str(good_image), "--prompt", "x", "--model-name", "kling-v9",
              "--allow-unknown-model")
    first = run.err.splitlines()[0]
    assert first.startswith("warning: model_name 'kling-v9' is not one of the models the spec lists"), run.err
    assert run.err.count("is not one of the models the spec lists") == 1, run.err  # said once
    creates = [r for r in fake_gateway.requests if r.target == "create"]
    assert creates and all(r.json["model_name"] == "kling-v9" for r in creates)
    # the fake, like new-api with no channel for the model, answers 503 model_not_found
    assert run.code != ExitCode.OK


def test_a_base_url_with_a_wrong_path_gets_the_web_ui_and_a_hint(capsys, fake_gateway: FakeGateway) -> None:
    # new-api's web UI answers unknown routes with 200 text/html (gateway-facts "Routes")
    wrong = fake_gateway.base_url.rstrip("/") + "/console"
    code = main(["status", "12345", "--base-url", wrong, "--token", fake_gateway.token])
    err = " ".join(capsys.readouterr().err.split())
    assert code == ExitCode.API_ERROR
    assert f"check the base URL ({wrong})" in err and "without /v1 or /kling" in err
    assert err.count("check the base URL") == 1, err  # the advice once
    assert "<" not in err and 'titled "New API"' in err, err  # a glimpse of the page, no markup


# ============================================================================ batch


def _two_rows(folder: Path) -> Path:
    return write_manifest(folder, "image,prompt,model_name\n"
                                  "cat.png,the cat jumps,kling-v9\n"
                                  "cat.png,the cat sits,kling-v2-6\n")


def test_a_batch_refuses_an_unlisted_model_naming_the_option(cli: Cli, fake_gateway: FakeGateway,
                                                              good_image: Path) -> None:
    run = cli("batch", str(_two_rows(good_image.parent)), "--out", "videos")
    assert run.code == ExitCode.INVALID_INPUT
    assert "shots.csv:2: model_name: must be one of kling-v2-master" in run.text
    assert "--allow-unknown-model" in run.text and "nothing was sent" in run.text
    assert '(got "kling-v9") — to send it anyway, pass --allow-unknown-model' in run.text, run.text
    assert "allow_unknown_model" not in run.text
    assert fake_gateway.requests == []


def test_a_batch_sends_an_unlisted_model_when_allowed(cli: Cli, fake_gateway: FakeGateway,
                                                      good_image: Path) -> None:
    run = cli("batch", str(_two_rows(good_image.parent)), "--out", "videos", "--allow-unknown-model",
              "--poll-interval", "0.05")
    # the warning, once, before anything was sent
    first = run.err.splitlines()[0]
    assert first.startswith("warning: shots.csv:2: model_name 'kling-v9' is not one of the models"), run.err
    assert run.err.count("'kling-v9' is not one of the models") == 1, run.err
    creates = [r.json["model_name"] for r in fake_gateway.requests if r.target == "create"]
    assert sorted(creates) == ["kling-v2-6", "kling-v9"]  # each sent once
    # new-api answers 503 model_not_found when no channel serves the model (gateway-facts
    # "Errors"; the fake does the same): that row fails, nothing paid; the other is made
    assert run.code == ExitCode.TASK_FAILED, run.text
    assert "model_not_found" in run.text and "No available channel for model kling-v9" in run.text
    assert "line 2: not created, nothing was paid: send it again with --retry-failed" in run.text

    again = cli("--json", "batch", str(_two_rows(good_image.parent)), "--out", "videos",
                "--allow-unknown-model", "--poll-interval", "0.05").json()
    states = {row["line"]: (row["state"], row["failure"]) for row in again["rows"]}
    assert states == {2: ("failed", "gateway"), 3: ("downloaded", None)}


def test_a_dry_run_with_an_unlisted_model_warns_and_plans_it(cli: Cli, fake_gateway: FakeGateway,
                                                             good_image: Path) -> None:
    run = cli("--json", "batch", str(_two_rows(good_image.parent)), "--out", "videos", "--dry-run",
              "--allow-unknown-model")
    plan = run.json()
    assert run.code == ExitCode.OK and plan["invalid"] == 0
    assert any("'kling-v9' is not one of the models" in w for w in plan["warnings"])
    assert {row["model_name"] for row in plan["to_create"]} == {"kling-v9", "kling-v2-6"}
    assert fake_gateway.requests == []
