"""What the command-line tests share: a clean environment, the shipped `fake_gateway`
fixture on loopback, and `cli(...)`, which runs `kling-i2v ARGS` in-process and returns
what a user sees (exit code, stdout, stderr)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kling_i2v.cli import main
from kling_i2v.testing import FakeGateway, sample_image_path

from tests.imagegen import make_png

DEAD_GATEWAY = "http://127.0.0.1:9"  # loopback, nothing listens: a test can never reach anyfast.ai


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    monkeypatch.setenv("ANYFAST_BASE_URL", DEAD_GATEWAY)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns otherwise
    monkeypatch.chdir(tmp_path)


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def text(self) -> str:
        """stdout and stderr, each line's spacing squeezed (rich pads table cells)."""
        return "\n".join(" ".join(line.split()) for line in (self.out + self.err).splitlines())


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], fake_gateway: FakeGateway) -> Cli:
    """Run `kling-i2v ARGS` against the fake gateway (connect=False: as typed)."""

    def run(*args: str, connect: bool = True) -> Run:
        argv = [*args, "--base-url", fake_gateway.base_url, "--token", fake_gateway.token] \
            if connect else list(args)
        code = main(argv)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def good_image(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    path.write_bytes(sample_image_path().read_bytes())
    return path


@pytest.fixture
def small_image(tmp_path: Path) -> Path:
    """A PNG below the upstream's 300 px smallest side."""
    path = tmp_path / "small.png"
    path.write_bytes(make_png(200, 200))
    return path


def image_folder(folder: Path, *, good: tuple[str, ...] = ("cat.png",), small: str = "small.png",
                 wide: str = "wide.png", gif: str = "fake.png") -> Path:
    """Images a user may have: good ones, one below 300 px, one too wide, a GIF named .png."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in good:
        (folder / name).write_bytes(sample_image_path().read_bytes())
    (folder / small).write_bytes(make_png(200, 200))
    (folder / wide).write_bytes(make_png(1000, 300))
    (folder / gif).write_bytes(b"GIF89a" + bytes(100))
    return folder


def write_manifest(folder: Path, text: str, name: str = "shots.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path
