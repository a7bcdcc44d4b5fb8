"""The fake gateway against openapi.yaml, judged by schemathesis (a tool we did not write).

schemathesis' CLI runs all its phases (coverage, fuzzing, stateful: create then query the
created task through an inferred link) with all its default checks against a running
FakeGateway: responses conform to the spec (status, content type, headers, body schema),
invalid input is rejected, valid input accepted, auth is enforced. The run is seeded and
bounded (about 400 test cases, ~20 s).

Three adjustments, each for a precise reason where the real gateway differs from what a
generic checker expects; the first is narrowed by a check of our own:

* `positive_data_acceptance` on the query operation also accepts 400. The path parameter's
  schema can only say "a non-empty string", not "the id of a task that exists", so
  schemathesis queries made-up ids; the gateway answers an unknown id with HTTP 400
  `{"code": "task_not_exist"}` (gateway-facts.md; the spec's BadRequest response), not 404.
  `unknown_task_is_task_not_exist` below then fails any 400 from the query operation that is
  not `task_not_exist`, so no other 400 slips through.
* `unsupported_method` is off: new-api answers a method a path does not have with its web
  UI, HTTP 200 text/html (gin without HandleMethodNotAllowed, router/web-router.go
  `NoRoute`; gateway-facts.md "Routes"), never 405. tests/testing pins that answer.
* Generated create bodies are mended where openapi.yaml allows what new-api refuses
  (`before_call` below): a missing `model_name` gets the spec's default (the spec, like
  anyfast's reference page, does not mark it required; the client always sends it; new-api
  answers 400 "Model name not specified", middleware/distributor.go), and an empty
  `prompt` gets one character (the spec has no minLength; new-api answers 400 "prompt is
  required", relay/common/relay_utils.go; gateway-facts.md "Create"). A 503 from create
  is accepted only as `model_not_found` for a model the spec does not list
  (`unknown_models_have_no_channel`): that is how new-api answers one.

This module is also the schemathesis hooks module (`hooks = ...` in the generated config):
the subprocess imports it to register the two custom checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from kling_i2v.testing import FakeGateway, Fault
from kling_i2v.testing.spec import component, default_of

from tests.conftest import REPO

QUERY_OPERATION = "get_image_to_video_task"
MODEL = default_of("model_name")
MODELS = component("ModelName")["enum"]
DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own

CONFIG = """
seed = 20261123
hooks = "tests.contract.test_schemathesis"
workers = 1

[auth.openapi.bearerAuth]
bearer = "{token}"

[generation]
max-examples = 50
database = "none"

[cache]
enabled = false

[checks.unsupported_method]
enabled = false

[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-operation-id = "{query_operation}"
checks.positive_data_acceptance.expected-statuses = {accepted}
"""


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Mend a create body where the spec allows what new-api refuses (every phase calls this)."""
    body = case.body
    if isinstance(body, dict) and "model_name" not in body:
        body["model_name"] = MODEL
    if isinstance(body, dict) and body.get("prompt") == "":
        body["prompt"] = "p"


@schemathesis.check
def unknown_models_have_no_channel(ctx: Any, response: Any, case: Any) -> None:
    """A 503 from create is only new-api's `model_not_found`, for a model the spec lacks."""
    if case.operation.definition.raw.get("operationId") == QUERY_OPERATION:
        return
    if response.status_code == 503:
        code = response.json()["error"]["code"]
        model = case.body.get("model_name") if isinstance(case.body, dict) else None
        if code != "model_not_found" or model in MODELS:
            raise AssertionError(f"create answered 503 {code!r} for model {model!r}")


@schemathesis.check
def unknown_task_is_task_not_exist(ctx: Any, response: Any, case: Any) -> None:
    """A 400 from the query operation is only ever the gateway's `task_not_exist`."""
    if case.operation.definition.raw.get("operationId") != QUERY_OPERATION:
        return
    if response.status_code == 400:
        code = response.json().get("code")
        if code != "task_not_exist":
            raise AssertionError(f"query answered 400 with code {code!r}, not task_not_exist")


@schemathesis.check
class EveryOperationSucceeds:
    """Each operation answered 2xx at least once: the run did reach the happy paths."""

    def __init__(self) -> None:
        self.tested: set[str] = set()
        self.succeeded: set[str] = set()

    def after_response(self, ctx: Any, response: Any, case: Any) -> None:
        self.tested.add(case.operation.label)
        if 200 <= response.status_code < 300:
            self.succeeded.add(case.operation.label)

    def after_run(self, ctx: Any) -> None:
        missing = self.tested - self.succeeded
        if missing:
            raise AssertionError("never answered 2xx: " + ", ".join(sorted(missing)))


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(time_scale=100) as gw:
        yield gw


def run_schemathesis(gateway: FakeGateway, tmp_path: Path, *args: str) -> tuple[int, str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.format(
            token=gateway.token,
            query_operation=QUERY_OPERATION,
            accepted=str([*DEFAULT_ACCEPTED, "400"]).replace("'", '"'),
        )
    )
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--no-color",
            "--config-file",
            str(config),
            "run",
            str(REPO / "openapi.yaml"),
            "--url",
            gateway.base_url,
            *args,
        ],
        check=False,
        cwd=tmp_path,  # hypothesis and schemathesis leave their folders in the working directory
        env={**os.environ, "PYTHONPATH": pythonpath, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    print(f"schemathesis: {time.monotonic() - started:.1f}s\n{output}")
    return result.returncode, output


def test_fake_gateway_passes_schemathesis(gateway: FakeGateway, tmp_path: Path) -> None:
    status, output = run_schemathesis(gateway, tmp_path)
    assert status == 0, output[-6000:]
    # the run really happened: both operations, every phase, tasks created and queried
    assert "Operations:       2 selected / 2 total" in output
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, phase
    assert gateway.count(on="create") > 0 and gateway.tasks
    assert gateway.count(on="query") > 0
    statuses = {r.status for r in gateway.requests}
    assert {200, 400, 401} <= statuses, statuses  # accepted, rejected, unauthenticated


def test_schemathesis_fails_a_gateway_that_breaks_the_spec(tmp_path: Path) -> None:
    """The negative control: the same harness does fail when the answers are wrong."""
    with FakeGateway(time_scale=100) as broken:
        broken.inject(Fault.unknown_status("x"), on="create", times=None)  # still conforms
        broken.inject(Fault.truncated_json(), on="query", times=None)  # does not
        status, output = run_schemathesis(
            broken, tmp_path, "--phases", "fuzzing", "--max-examples", "5"
        )
    assert status != 0
    assert "GET /kling/v1/videos/image2video/{task_id}" in output
    assert "POST /kling/v1/videos/image2video\n" not in output.split("FAILURES")[-1]
