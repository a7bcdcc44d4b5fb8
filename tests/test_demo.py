"""`make demo` (python -m kling_i2v.demo) runs offline and ends with the next commands to
try; those commands work as printed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from kling_i2v.testing import FakeGateway


def test_the_demo_ends_with_commands_that_work(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYFAST_")}
    done = subprocess.run([sys.executable, "-m", "kling_i2v.demo", "--out", str(tmp_path / "demo"),
                           "--seconds", "0.3"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("next, the command line against the same offline fake gateway:")
    commands = [shlex.split(line.split("#")[0]) for line in lines[start + 1:] if line.startswith("  ")]
    programs = {c[0] for c in commands if c[0] != "export"}
    script = Path(sys.executable).with_name("kling-i2v")
    assert programs == {str(script) if script.exists() else "kling-i2v"}
    assert [c[1] for c in commands if c[0] != "export"] == ["fake-gateway", "create", "batch"]
    assert "export ANYFAST_BASE_URL=http://127.0.0.1:8765 ANYFAST_API_KEY=sk-fake" in done.stdout

    # the printed create and batch, as typed, against a fake gateway like the printed one
    with FakeGateway(time_scale=100.0) as gateway:
        env.update(ANYFAST_BASE_URL=gateway.base_url, ANYFAST_API_KEY=gateway.token)
        for command in commands:
            if command[0] == "export" or command[1] == "fake-gateway":
                continue
            argv = [sys.executable, "-m", "kling_i2v.cli", *command[1:], "--poll-interval", "0.05"] \
                if command[1] == "create" else [sys.executable, "-m", "kling_i2v.cli", *command[1:]]
            ran = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=120, check=False)
            assert ran.returncode == 0, (command, ran.stderr)
        assert gateway.count(on="create") == 1
    assert (tmp_path / "demo.mp4").stat().st_size > 0
