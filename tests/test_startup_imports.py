"""What a short-lived program loads: `kling-i2v status ID --json` and a sync client's first
call load neither the terminal UI (rich), the batch machinery (asyncio, sqlite3, the
runner), nor anything else they do not use (issue 12: the command took 1.59x a one-shot
httpx GET, much of it imports).

Each check runs in a fresh interpreter, against the fake gateway on loopback. `click` is
blocked there: httpx imports its own command line (click, rich, pygments) whenever click
is installed, as it is in this dev environment (schemathesis brings it); a user's install
of kling-i2v has no click, and it is kling-i2v's own imports that are checked here.

`kling_i2v` and the generated `kling_i2v_api.models` export their names lazily (PEP 562)
for this; the last tests check that every exported name is still the object it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kling_i2v
import kling_i2v.client
import kling_i2v.errors
import kling_i2v.images
import kling_i2v_api.models
from kling_i2v.testing import FakeGateway

from tests.conftest import REPO

# What only a create loads (a test below checks it does: these modules exist).
CREATE_ONLY = ("kling_i2v.requests", "kling_i2v.body", "kling_i2v.images",
               "kling_i2v._imageheader", "kling_i2v.capabilities", "kling_i2v.validation")
# What none of these programs needs. Each one was loaded by `status --json` before (12).
NOT_NEEDED = ("rich", "asyncio", "sqlite3", "kling_i2v._runner", "kling_i2v.batchfolder",
              "kling_i2v._engine", "kling_i2v.tasklog",
              # second round: the package's eager exports, the spec's field tables, the
              # journal (batch output), the other commands' modules, and the generated
              # models a query does not read (the models' package used to import them all)
              "kling_i2v.fit", "kling_i2v.motion", "kling_i2v._pillow", "kling_i2v.fields",
              "kling_i2v._jsonwords", "kling_i2v._create_fields", "kling_i2v.journal",
              "kling_i2v.cli._create", "kling_i2v.cli._batch", "kling_i2v.cli._media",
              "kling_i2v.cli._fake", "kling_i2v.cli._batch_output",
              "kling_i2v_api.models.image_to_video_request",
              "kling_i2v_api.models.camera_control", "kling_i2v_api.models.camera_control_config",
              "kling_i2v_api.models.multi_prompt_shot", "kling_i2v_api.models.model_name",
              "kling_i2v_api.models.video_task",
              # third round: what builds a create's body (the clients' core imported it,
              # and the clients' class bodies needed requests.py for create()'s docstring)
              *CREATE_ONLY)

_PROBE = """
import json, sys
sys.modules["click"] = None  # see the module docstring
{body}
print(json.dumps(sorted(sys.modules)))
"""


def _fresh(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """What `python -c code args...` prints, in a fresh interpreter; it must succeed."""
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _modules_after(body: str, gateway: FakeGateway) -> set[str]:
    env = {**os.environ, "ANYFAST_API_KEY": gateway.token, "ANYFAST_BASE_URL": gateway.base_url}
    loaded: set[str] = set(json.loads(_fresh(_PROBE.format(body=body), env=env).splitlines()[-1]))
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
    # a lazily exported name loads its module when it is used, and only then
    assert {"kling_i2v.fit", "kling_i2v.motion"} <= _modules_after(
        "from kling_i2v import fit_image, MotionBrush\n", fake_gateway)
    assert {"kling_i2v.cli._create", "kling_i2v.fields"} <= _modules_after(
        "from kling_i2v.cli import main\nmain(['create', '--help'])\n", fake_gateway)
    assert "kling_i2v_api.models.image_to_video_request" in _modules_after(
        "from kling_i2v_api.models import ImageToVideoRequest\n", fake_gateway)
    assert set(CREATE_ONLY) <= _modules_after(
        "from kling_i2v import KlingClient\nwith KlingClient() as kling:\n"
        "    kling.create(image='https://example.com/cat.png', prompt='the cat jumps')\n",
        fake_gateway)


# Where each name of `kling_i2v.__all__` lived when the package imported them all eagerly
# (before issue 12's lazy exports): the names must still be those very objects.
HOMES = {
    "DEFAULT_BASE_URL": "kling_i2v.client", "AsyncKlingClient": "kling_i2v.client",
    "Deadlines": "kling_i2v.client", "KlingClient": "kling_i2v.client",
    "RetryPolicy": "kling_i2v._http", "FitResult": "kling_i2v.fit", "fit_image": "kling_i2v.fit",
    "fit_mask": "kling_i2v.fit", "Image": "kling_i2v.images", "MotionBrush": "kling_i2v.motion",
    "Outcome": "kling_i2v.outcomes", "classify": "kling_i2v.outcomes",
    "PollPolicy": "kling_i2v.polling", "Task": "kling_i2v.tasks", "TaskStatus": "kling_i2v.tasks",
    "CreateFields": "kling_i2v._create_fields", "ImageLike": "kling_i2v._create_fields",
    "__version__": "kling_i2v._version",
    **dict.fromkeys(("CameraControlType", "Duration", "Mode", "ModelName", "ShotType", "Sound"),
                    "kling_i2v_api.models"),
    **dict.fromkeys(kling_i2v.errors.__all__, "kling_i2v.errors"),
}

_EVERY_NAME = """
import importlib, json, sys
import kling_i2v
homes = json.loads(sys.argv[1])
names = sorted(kling_i2v.__all__)
wrong = []
for name in names:
    value = getattr(importlib.import_module("kling_i2v"), name)
    exec(f"from kling_i2v import {name} as imported")
    home = getattr(importlib.import_module(homes[name]), name)
    if not (value is home and imported is home):
        wrong.append(name)
print(json.dumps({"names": names, "wrong": wrong, "dir": dir(kling_i2v)}))
"""


def test_every_public_name_is_the_object_it_was() -> None:
    """`from kling_i2v import X` and `kling_i2v.X` give, for every name of `__all__`, the
    object its module defines, in a fresh process (the exports load on first use)."""
    seen = json.loads(_fresh(_EVERY_NAME, json.dumps(HOMES)))
    assert seen["names"] == sorted(HOMES)  # __all__ lists the same names as before
    assert seen["wrong"] == []
    assert set(HOMES) <= set(seen["dir"])
    # a literal check beside the table: the classes users import first
    assert kling_i2v.KlingClient is kling_i2v.client.KlingClient
    assert kling_i2v.Image is kling_i2v.images.Image
    assert kling_i2v.Mode is kling_i2v_api.models.Mode


def test_star_import_submodules_and_unknown_names() -> None:
    code = ("from kling_i2v import *\nimport kling_i2v\n"
            "assert KlingClient is kling_i2v.client.KlingClient and fit_image and Mode\n"
            "import kling_i2v_api.models as m\nassert m.video_task.VideoTask is m.VideoTask\n"
            "for module in (kling_i2v, m):\n"
            "    try:\n        module.NoSuchName\n    except AttributeError as exc:\n"
            "        print(exc)\n")
    assert _fresh(code).splitlines() == [
        "module 'kling_i2v' has no attribute 'NoSuchName'",
        "module 'kling_i2v_api.models' has no attribute 'NoSuchName'"]


def test_every_generated_model_is_exported_by_the_models_package() -> None:
    """kling_i2v_api.models loads each model on first use: every name of its __all__
    is still there, and is the class its own module defines."""
    code = ("import importlib, json, kling_i2v_api.models as m\n"
            "wrong = [n for n in m.__all__ if getattr(m, n) is not getattr(importlib.import_module("
            "getattr(m, n).__module__), n)]\n"
            "print(json.dumps({'names': list(m.__all__), 'wrong': wrong}))\n")
    seen = json.loads(_fresh(code))
    assert seen["wrong"] == []
    assert {"TaskQueryResponse", "ImageToVideoRequest", "VideoTask", "ModelName"} <= set(seen["names"])
    # one model per module of the package, as the generator writes them
    models = Path(kling_i2v_api.models.__file__).parent
    assert len(seen["names"]) == len([p for p in models.glob("*.py") if p.name != "__init__.py"])


def test_the_models_template_makes_a_working_empty_package(tmp_path: Path) -> None:
    """A spec without schemas gives a models package with no imports: it must still import,
    list its names and refuse unknown ones (its `__all__` used to be written only when
    there were models, and `__dir__` read it)."""
    from jinja2 import Environment, FileSystemLoader

    # openapi-python-client's own settings (openapi_python_client/__init__.py, Project)
    env = Environment(loader=FileSystemLoader(REPO / "generator-templates"), trim_blocks=True,
                      lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"],
                      keep_trailing_newline=True)
    (tmp_path / "empty_models").mkdir()
    (tmp_path / "empty_models" / "__init__.py").write_text(
        env.get_template("models_init.py.jinja").render(imports=[], alls=[]))
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nimport empty_models as m\n"
            "namespace = {}\nexec('from empty_models import *', namespace)\n"
            "print(m.__all__, 'NoSuchName' in dir(m), '__all__' in dir(m),"
            " sorted(set(namespace) - {'__builtins__'}))\n"
            "try:\n    m.NoSuchName\nexcept AttributeError as exc:\n    print(exc)\n")
    assert _fresh(code, str(tmp_path)).splitlines() == [
        "() False True []", "module 'empty_models' has no attribute 'NoSuchName'"]


def test_every_enum_of_the_spec_is_exported() -> None:
    """A new enum in openapi.yaml reaches `from kling_i2v import *` with no hand edit."""
    import kling_i2v
    from kling_i2v._fields_doc import ENUMS

    assert set(ENUMS) <= set(kling_i2v.__all__)
    assert {"Mode", "ModelName", "Sound", "Duration"} <= set(ENUMS)  # literal: a wrong spec shows
    for name in ENUMS:
        assert getattr(kling_i2v, name).__module__.startswith("kling_i2v_api.models")
