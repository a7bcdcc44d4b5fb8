"""Attacks on the batch's memory of what it paid for (issue 11.4, 11.1 batch side).

- the lock: deleting files in the output folder mid-run does not let a second run in;
- the journal deleted mid-run: the run stops before another create, the task log keeps
  every task id, the next run refuses until the journal is rebuilt, then nothing is paid
  twice;
- a 302 or an HTML page in answer to a create the gateway accepted (a login wall or a
  proxy in between): the row is ambiguous, never pending, the batch stops, and the task
  the user finds can be adopted: one task per row in the end.

Figures: creates per logical row, the fake gateway's record being the ground truth.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from kling_i2v.batch import KILL_AT_ENV, adopt
from kling_i2v.cli import ExitCode, main
from kling_i2v.journal import JOURNAL_NAME, Journal, RowState
from kling_i2v.testing import FakeGateway, sample_image_path

from tests.hostile import figures
from tests.scripted_server import QuietHandler

TOKEN = "sk-hostile-journal-0011"
FAST = ["--poll-interval", "0.05"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(KILL_AT_ENV, raising=False)
    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    monkeypatch.setenv("ANYFAST_BASE_URL", "http://127.0.0.1:9")  # never the real gateway
    monkeypatch.chdir(tmp_path)


pytestmark = pytest.mark.fake_gateway(tokens=(TOKEN,), seed=7)  # the `gw` of conftest.py


def write_manifest(folder: Path, count: int, seconds: float = 10) -> Path:
    (folder / "cat.png").write_bytes(sample_image_path().read_bytes())
    lines = ["image,prompt"] + [f"cat.png,shot {n} [fake:seconds={seconds}]" for n in range(1, count + 1)]
    path = folder / "shots.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def spawn(base_url: str, manifest: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "ANYFAST_BASE_URL": base_url, "ANYFAST_API_KEY": TOKEN}
    return subprocess.Popen([sys.executable, "-m", "kling_i2v.cli", "batch", str(manifest),
                             "--out", str(out), "--concurrency", "2", *FAST],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def submitted(out: Path) -> int:
    try:
        with Journal.in_folder(out) as journal:
            return sum(1 for r in journal.rows() if r.task_id is not None)
    except Exception:  # noqa: BLE001 - still being created
        return 0


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def creates_per_row(gw: FakeGateway) -> collections.Counter[str]:
    """Tasks the gateway made per logical row (the prompt names the row)."""
    return collections.Counter(t.body["prompt"] for t in gw.tasks.values())


def run_cli(gw_url: str, manifest: Path, out: Path, *args: str) -> int:
    return main(["batch", str(manifest), "--out", str(out), *FAST, "--base-url", gw_url,
                 "--token", TOKEN, *args])


def running_batch(gw: FakeGateway, tmp_path: Path, rows: int) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A batch in another process, caught with two tasks created and more to come."""
    manifest = write_manifest(tmp_path, rows, seconds=20)
    out = tmp_path / "out"
    process = spawn(gw.base_url, manifest, out)
    wait_for(lambda: submitted(out) >= 2)
    return manifest, out, process


def test_deleting_files_mid_run_does_not_let_a_second_run_in(
        gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, out, first = running_batch(gw, tmp_path, 6)
    for entry in out.iterdir():  # the old lock file's place, and any other file but the two records
        if entry.name.startswith(".") and entry.is_file():
            entry.unlink()
    code = run_cli(gw.base_url, manifest, out)
    assert code == ExitCode.INVALID_INPUT
    assert "another kling-i2v batch is running" in capsys.readouterr().err
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    per_row = creates_per_row(gw)
    assert len(per_row) == 6 and set(per_row.values()) == {1}
    figures.merge("journal_attacks", second_run_while_locked={
        "exit": int(code), "creates_per_row": max(per_row.values())})


def test_a_journal_deleted_mid_run_stops_creates_and_is_rebuilt(
        gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, out, first = running_batch(gw, tmp_path, 10)
    for name in (JOURNAL_NAME, JOURNAL_NAME + "-wal", JOURNAL_NAME + "-shm"):
        (out / name).unlink(missing_ok=True)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode != 0 and "deleted or replaced during the run" in stderr
    made = len(gw.tasks)
    assert made < 10, "creates went on after the journal was gone"

    code = run_cli(gw.base_url, manifest, out)
    err = capsys.readouterr().err
    assert code == ExitCode.INVALID_INPUT and "rebuild" in err and len(gw.tasks) == made
    rebuilt = subprocess.run([sys.executable, "-m", "kling_i2v.batchfolder", "rebuild", str(out)],
                             check=False, capture_output=True, text=True, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    code = run_cli(gw.base_url, manifest, out, "--resubmit-ambiguous")
    assert code == 0, capsys.readouterr().err
    per_row = creates_per_row(gw)
    with Journal.in_folder(out) as journal:
        rows = journal.rows()
    assert {r.state for r in rows} == {RowState.DOWNLOADED} and len(rows) == 10
    # a row whose create was in flight when the journal went is ambiguous after the
    # rebuild; only such a row may have a second task, and only after --resubmit-ambiguous
    assert sum(per_row.values()) - len(per_row) <= 2
    every_task = {t for t in gw.tasks}
    assert {r.task_id for r in rows} <= every_task
    figures.merge("journal_attacks", journal_deleted_mid_run={
        "tasks_before_the_stop": made, "rows": 10, "tasks_in_the_end": len(gw.tasks),
        "creates_per_row_max": max(per_row.values())})


class _Proxy:
    """Forwards everything to the fake gateway; answers the creates it is told to with a 302
    or an HTML page *after* the gateway accepted them (a login wall in between)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.plan: dict[int, str] = {}
        self.creates = 0
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._relay()

            def do_POST(self) -> None:
                self._relay()

            def _relay(self) -> None:
                body = self.read_body()
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
                answer = httpx.request(self.command, proxy.upstream + self.path, content=body,
                                       headers=headers, timeout=30)
                replaced = None
                if self.command == "POST":
                    proxy.creates += 1
                    replaced = proxy.plan.get(proxy.creates)
                if replaced == "302":
                    status, data, extra = 302, b"", {"Location": "/login"}
                elif replaced == "html":
                    status, data, extra = 200, b"<html><body>Please log in</body></html>", {}
                else:
                    status, data, extra = answer.status_code, answer.content, {}
                self.send_response(status)
                content_type = "text/html" if replaced else answer.headers.get("content-type", "")
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("answer", ["302", "html"])
def test_a_redirect_or_html_after_an_accepted_create_is_ambiguous_never_pending(
        gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: str) -> None:
    manifest = write_manifest(tmp_path, 5, seconds=5)
    out = tmp_path / "out"
    proxy = _Proxy(gw.base_url)
    try:
        proxy.plan = {3: answer}
        code = main(["batch", str(manifest), "--out", str(out), *FAST, "--concurrency", "1",
                     "--base-url", proxy.url, "--token", TOKEN])
        err = capsys.readouterr().err
        # the batch stops: the next create would meet the same page, and may pay for it
        assert code == ExitCode.AMBIGUOUS and len(gw.tasks) == 3, err
        assert "the task may exist" in err
        with Journal.in_folder(out) as journal:
            rows = journal.rows()
        (doubtful,) = [r for r in rows if r.state is RowState.AMBIGUOUS]
        assert not [r for r in rows if r.state is RowState.SUBMITTING]
        # a plain re-run does not send the doubtful row again
        proxy.plan = {}
        code = main(["batch", str(manifest), "--out", str(out), *FAST, "--base-url", proxy.url,
                     "--token", TOKEN])
        capsys.readouterr()
        assert code == ExitCode.AMBIGUOUS
        assert max(creates_per_row(gw).values()) == 1 and len(gw.tasks) == 5
        # the user finds the task (here: the gateway's record, by external_task_id) and adopts it
        (found,) = [t for t in gw.tasks.values() if t.external_task_id == doubtful.external_task_id]
        adopt(out, doubtful.line, found.task_id)
        code = main(["batch", str(manifest), "--out", str(out), *FAST, "--base-url", proxy.url,
                     "--token", TOKEN])
        capsys.readouterr()
        assert code == 0
        with Journal.in_folder(out) as journal:
            assert {r.state for r in journal.rows()} == {RowState.DOWNLOADED}
        per_row = creates_per_row(gw)
        assert len(gw.tasks) == 5 and set(per_row.values()) == {1}
        figures.merge("journal_attacks", **{f"{answer}_after_accepted_create": {
            "rows": 5, "tasks": len(gw.tasks), "creates_per_row_max": max(per_row.values()),
            "ambiguous_rows": 1, "adopted": 1}})
    finally:
        proxy.close()
