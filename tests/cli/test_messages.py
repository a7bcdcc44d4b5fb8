"""How the command line words what it tells: each fact once, and its own control flow kept
apart from the library's errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import kling_i2v.cli
from kling_i2v.cli import ExitCode
from kling_i2v.errors import KlingError
from kling_i2v.testing import FakeGateway

from tests.cli.conftest import Cli


def test_the_request_id_is_said_once(cli: Cli, fake_gateway: FakeGateway, good_image: Path) -> None:
    # new-api answers a model no channel serves with 503 model_not_found in the gateway
    # shape, whose message already ends in "(request id: X)" and whose
    # X-Oneapi-Request-Id header carries the same X (gateway-facts.md "Errors")
    run = cli("create", str(good_image), "--prompt", "x", "--model-name", "kling-v9",
              "--allow-unknown-model")
    assert run.code == ExitCode.API_ERROR, run.err
    (request_id,) = set(re.findall(r"request id:? ([^)\s]+)\)", run.err))
    assert run.err.count(request_id) == 1, run.err
    assert f"(request id: {request_id})" in run.err

    as_json = cli("--json", "create", str(good_image), "--prompt", "x", "--model-name", "kling-v9",
                  "--allow-unknown-model").json()["error"]
    assert as_json["message"].count(as_json["request_id"]) == 1, as_json


def test_the_cli_defines_no_library_error() -> None:
    """Library errors live in kling_i2v.errors; cli/ only has its own control flow."""
    package = kling_i2v.cli
    defined = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name.endswith(".__main__"):  # runs the command line on import
            continue
        module = importlib.import_module(info.name)
        defined += [value for value in vars(module).values()
                    if inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__]
    assert {cls.__name__ for cls in defined} >= {"Stop", "UsageError"}
    assert [cls for cls in defined if issubclass(cls, KlingError)] == []
