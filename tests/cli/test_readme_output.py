"""The README's examples of what a user sees are what the program prints: each is run
here (the library's validation message, the command line's create session against the
fake gateway) and compared line by line, ids aside."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kling_i2v import RequestValidationError
from kling_i2v.validation import validate_request

from tests.cli.conftest import Cli
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _block_after(marker: str) -> list[str]:
    """The lines of the fenced block that contains `marker`."""
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README, re.DOTALL | re.MULTILINE):
        if marker in block:
            return block.splitlines()
    raise AssertionError(f"README has no example block with {marker!r}")


def test_the_readme_validation_example_is_the_real_message() -> None:
    shown = _block_after("RequestValidationError: invalid request, 3 problems")
    with pytest.raises(RequestValidationError) as info:
        validate_request({
            "image": "https://example.com/cat.png", "prompt": "a cat", "cfg_scale": 1.5,
            "mode": "ultra", "multi_shot": True, "shot_type": "customize",
            "multi_prompt": [{"index": 1, "prompt": "a", "duration": "2"},
                             {"index": 2, "prompt": "b", "duration": "1"},
                             {"index": 3, "prompt": "c", "duration": "99"}],
        })
    assert shown == f"kling_i2v.errors.RequestValidationError: {info.value}".splitlines()


def _ids_out(line: str) -> str:
    line = re.sub(r"\b\d{15,20}\b", "<task>", line)
    return re.sub(r"kling-i2v-[0-9a-f]{32}", "<external id>", line)


def test_the_readme_create_session_is_what_create_prints(cli: Cli, good_image: Path, tmp_path: Path) -> None:
    shown = _block_after("created task")
    start = next(i for i, line in enumerate(shown) if line.startswith("$ kling-i2v create"))
    expected = [_ids_out(line) for line in shown[start + 1:start + 5]]
    run = cli("create", str(good_image), "--prompt", "the cat jumps onto the sofa", "--mode", "pro",
              "--wait", "--out", str(tmp_path / "cat.mp4"), "--poll-interval", "0.05")
    assert run.code == 0, run.err
    printed = [_ids_out(line) for line in (run.out + run.err).splitlines()]
    printed = [line.replace(str(tmp_path / "cat.mp4"), "cat.mp4") for line in printed]
    assert printed == expected, (printed, expected)
