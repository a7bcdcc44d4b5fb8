"""`kling-i2v batch` against the fake gateway: manifests, faults, resume, and crashes.

Every test ends with an audit that compares the journal with the fake's own record of the
tasks it created: no task the gateway accepted is missing from the journal ("lost"), and no
row has more than one task unless the journal calls it ambiguous ("duplicates").

Crash tests run the batch as a separate process and SIGKILL it, either at a named point
(the KLING_I2V_TEST_KILL_AT hook, see kling_i2v.batch) or at whatever moment it has reached
after some rows were submitted. The fake gateway lives in this process, so its record
survives the kill.

Covers: _engine.py, _runner.py, _pacing.py, cli/_batch.py
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from kling_i2v._pacing import DurationGuess, TaskWindow
from kling_i2v.batch import KILL_AT_ENV, BatchOptions, BatchResult, batch_client, run_batch
from kling_i2v.batchfolder import open_folder
from kling_i2v.cli import ExitCode, main
from kling_i2v.journal import JOURNAL_NAME, Journal, JournalRow, RowState
from kling_i2v.manifest import read_rows
from kling_i2v.testing import FakeGateway, Fault, sample_image_path, sample_video_path

from tests.imagegen import make_png

TOKEN = "sk-batch-canary-0c4e"
FAST = ["--poll-interval", "0.05"]
VIDEO = sample_video_path().read_bytes()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(KILL_AT_ENV, raising=False)
    monkeypatch.setenv("ANYFAST_BASE_URL", "http://127.0.0.1:9")  # never the real gateway
    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


pytestmark = pytest.mark.fake_gateway(tokens=(TOKEN,), seed=0)  # the `gw` of conftest.py


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("cat.png", "dog.png", "owl.png"):
        (folder / name).write_bytes(sample_image_path().read_bytes())
    return folder


def write_manifest(folder: Path, count: int, *, fail_every: int = 0, seconds: float | None = None,
                   name: str = "shots.csv") -> Path:
    """A CSV of `count` rows; every `fail_every`-th row's task fails with a reason."""
    lines = ["image,prompt,mode,duration"]
    for n in range(1, count + 1):
        prompt = f"shot {n}"
        if fail_every and n % fail_every == 0:
            prompt += f" [fake:fail=policy-{n}]"
        if seconds is not None:
            prompt += f" [fake:seconds={seconds}]"
        image = ("cat.png", "dog.png", "owl.png")[n % 3]
        lines.append(f"{image},{prompt},{'pro' if n % 2 else 'std'},{5 + n % 3}")
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def batch(gw: FakeGateway, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """Run `kling-i2v --json batch ARGS` in-process: exit code, the JSON summary, stderr."""
    code = main(["--json", "batch", *args, *FAST, "--base-url", gw.base_url, "--token", TOKEN])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


# ============================================================================ audit


@attrs.frozen
class Audit:
    rows: list[JournalRow]
    tasks: int
    duplicates: int
    """Tasks beyond the first for any row."""
    lost: int
    """Tasks the gateway created that the journal cannot name."""
    per_row: dict[str, int]

    def states(self) -> collections.Counter[str]:
        return collections.Counter(r.state.value for r in self.rows)


def audit(gw: FakeGateway, out: Path) -> Audit:
    """Check the journal against the fake's record; assert what must always hold."""
    with Journal.in_folder(out) as journal:
        rows = journal.rows()
        attempts = journal.attempts()
    row_of = {a.external_task_id: a.key for a in attempts}
    tasks = gw.tasks
    per_row = collections.Counter(row_of[t.external_task_id] for t in tasks.values()
                                  if t.external_task_id in row_of)
    lost = sum(1 for t in tasks.values() if t.external_task_id not in row_of)
    for row in rows:
        assert row.state is not RowState.SUBMITTING  # never left behind by a finished run
        if row.task_id is not None:
            assert tasks[row.task_id].external_task_id == row.external_task_id
        if row.state is RowState.AMBIGUOUS:
            # the one create in doubt made at most one task
            assert per_row[row.key] <= 1
        elif row.state in (RowState.SUBMITTED, RowState.SUCCEEDED, RowState.DOWNLOADED):
            assert per_row[row.key] >= 1
        if row.state is RowState.DOWNLOADED:
            assert (out / row.output).read_bytes() == VIDEO
        if row.state is RowState.FAILED:
            assert row.reason
    duplicates = sum(n - 1 for n in per_row.values() if n > 1)
    return Audit(rows, len(tasks), duplicates, lost, dict(per_row))


def assert_clean(result: Audit, *, allow_ambiguous_duplicates: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    assert result.lost == 0
    for key, count in result.per_row.items():
        assert count == 1 or key in allow_ambiguous_duplicates, f"row {key} has {count} tasks"


# ============================================================================ runs


def test_manifest_csv_runs_every_row(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = images / "shots.csv"
    manifest.write_text(
        "image,prompt,mode,duration,cfg_scale,camera_control,output\n"
        'cat.png,the cat jumps,pro,10,0.25,"{""type"": ""simple"", ""config"": {""zoom"": 3}}",cat-jump\n'
        "dog.png,the dog runs,,,,,\n"
        "https://example.com/owl.png,the owl flies,,,,,\n"
    )
    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "videos", "--sound", "off")
    assert code == ExitCode.OK, summary
    assert summary["counts"]["downloaded"] == 3 and summary["stopped"] == "finished"
    files = sorted(p.name for p in (images.parent / "videos").glob("*.mp4"))
    assert files == ["0002-dog.mp4", "0003-owl.mp4", "cat-jump.mp4"]
    bodies = {t.body["prompt"]: t.body for t in gw.tasks.values()}
    first = bodies["the cat jumps"]
    assert (first["mode"], first["duration"], first["cfg_scale"]) == ("pro", "10", 0.25)
    assert first["camera_control"] == {"type": "simple", "config": {"zoom": 3}}
    assert all(b["sound"] == "off" for b in bodies.values())  # the command-line default
    assert bodies["the owl flies"]["image"] == "https://example.com/owl.png"
    assert len(bodies["the dog runs"]["image"]) > 1000  # read relative to the manifest
    assert_clean(audit(gw, images.parent / "videos"))


def test_manifest_jsonl_and_human_summary(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = images / "shots.jsonl"
    rows = [{"image": "cat.png", "prompt": "a", "duration": 5, "cfg_scale": "0.5"},
            {"image": "dog.png", "prompt": "b [fake:fail=nope]", "multi_shot": False}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    code = main(["batch", str(manifest), "--out", "out", *FAST, "--base-url", gw.base_url,
                 "--token", TOKEN])
    out, err = capsys.readouterr()
    assert code == ExitCode.TASK_FAILED
    assert re.search(r"downloaded\s+│\s+1\b", out) and re.search(r"failed\s+│\s+1\b", out)
    assert "nope" in out and "videos:  out (1 downloaded)" in out
    assert "journal: out/" + JOURNAL_NAME in out
    assert TOKEN not in out + err


def test_folder_with_one_prompt(gw: FakeGateway, images: Path, capsys) -> None:
    code, summary, _ = batch(gw, capsys, str(images), "--out", "v", "--prompt", "slow zoom",
                             "--mode", "pro")
    assert code == 0
    assert sorted(r["file"].rsplit("/", 1)[1] for r in summary["rows"]) == ["cat.mp4", "dog.mp4", "owl.mp4"]
    assert {(t.body["prompt"], t.body["mode"]) for t in gw.tasks.values()} == {("slow zoom", "pro")}


def test_an_invalid_manifest_sends_nothing(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = images / "bad.csv"
    manifest.write_text("image,prompt,mode,cfg_scale\ncat.png,ok,std,0.5\nmissing.png,x,ultra,2\ncat.png,,,\n")
    code = main(["batch", str(manifest), "--out", "v", "--base-url", gw.base_url, "--token", TOKEN])
    err = capsys.readouterr().err
    assert code == ExitCode.INVALID_INPUT
    for problem in ("bad.csv:3: image: no such image file: missing.png",
                    "bad.csv:3: mode: must be one of std, pro", "bad.csv:3: cfg_scale: must be <= 1",
                    "bad.csv:4: prompt is required"):
        assert problem in err
    manifest.write_text("image,promt\ncat.png,x\n")
    code = main(["--json", "batch", str(manifest), "--out", "v", "--token", TOKEN])
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 2 and "unknown column 'promt'" in error["message"]
    assert gw.count() == 0


def test_resume_skips_finished_rows_and_polls_submitted_ones(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 6, seconds=60)  # 0.6 s each
    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v", "--timeout", "0.3")
    assert code == ExitCode.NOT_FINISHED and summary["stopped"] == "timeout"
    assert summary["counts"]["submitted"] == 6 and gw.count(on="create") == 6
    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v")
    assert code == 0 and summary["counts"]["downloaded"] == 6
    assert gw.count(on="create") == 6  # polled, not created again

    (images.parent / "v" / "0002-owl.mp4").unlink()
    downloads = gw.count(on="download")
    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v")
    assert code == 0 and gw.count(on="create") == 6 and gw.count(on="download") == downloads + 1
    assert_clean(audit(gw, images.parent / "v"))


def test_row_identity_survives_inserted_rows(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 3)
    assert batch(gw, capsys, str(manifest), "--out", "v")[0] == 0
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([lines[0], "cat.png,a new first row,std,5", *lines[1:]]) + "\n")
    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v")
    assert code == 0 and gw.count(on="create") == 4  # only the new row
    assert len({r["file"] for r in summary["rows"]}) == 4


def test_a_429_on_a_create_pauses_creates_only(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 8, seconds=200)  # 2 s at the fake's x100: running through the pause
    gw.inject(Fault.delay(0.2), on="create", times=3)  # creates overlap when the 429 lands
    gw.inject(Fault.status(429, retry_after="2"), on="create")
    code, _, _ = batch(gw, capsys, str(manifest), "--out", "v", "--concurrency", "4")
    assert code == 0
    requests = gw.requests
    (limited,) = [r for r in requests if r.status == 429]
    def since(target: str) -> list[float]:
        return sorted(r.received_at - limited.received_at for r in requests
                      if r.received_at > limited.received_at and r.target == target)
    # creates already on the wire may land just after (late on a loaded machine); then
    # none until the 2 s pause is over
    assert [t for t in since("create") if 0.8 < t < 1.8] == [], since("create")
    # while queries go on: finished tasks must still be noticed (issue 13.4)
    assert [t for t in since("query") if 0.8 < t < 1.8], since("query")
    assert_clean(audit(gw, images.parent / "v"))


def test_ambiguous_rows_need_a_flag(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 3)
    gw.inject(Fault.drop_after_create(), on="create")
    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v")
    assert code == ExitCode.AMBIGUOUS
    (row,) = [r for r in summary["rows"] if r["state"] == "ambiguous"]
    assert row["external_task_id"] in {t.external_task_id for t in gw.tasks.values()}
    assert gw.count(on="create") == 3

    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v")
    assert code == ExitCode.AMBIGUOUS and gw.count(on="create") == 3  # never silently

    code, summary, _ = batch(gw, capsys, str(manifest), "--out", "v", "--resubmit-ambiguous")
    assert code == 0 and gw.count(on="create") == 4
    result = audit(gw, images.parent / "v")
    assert result.duplicates == 1 and result.per_row[row["key"]] == 2 and result.lost == 0
    with Journal.in_folder(images.parent / "v") as journal:
        outcomes = [a.outcome for a in journal.attempts(row["key"])]
    assert outcomes == ["ambiguous", "created"]


def test_bad_token_stops_the_batch(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 5)
    code = main(["batch", str(manifest), "--out", "v", "--base-url", gw.base_url, "--token", "sk-nope"])
    out, err = capsys.readouterr()
    assert code == ExitCode.API_ERROR and "refused the API token" in err
    assert re.search(r"pending\s+│\s+5\b", out) and not gw.tasks


def test_one_journal_one_run(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 2)
    with open_folder(images.parent / "v", None):
        code = main(["batch", str(manifest), "--out", "v", "--base-url", gw.base_url, "--token", TOKEN])
    assert code == ExitCode.INVALID_INPUT
    assert "another kling-i2v batch is running" in capsys.readouterr().err and gw.count() == 0


# ============================================================================ faults


def test_sixty_rows_through_429s_5xx_and_resets(gw: FakeGateway, images: Path, capsys) -> None:
    rows = 60
    manifest = write_manifest(images, rows, fail_every=10)
    gw.set_fault_rates({"5xx": 0.08, "reset": 0.05, "drop_after_create": 0.02}, seed=42)
    stop = threading.Event()

    def rate_limit() -> None:  # a 429 every 15 requests, with a short Retry-After
        mark = 15
        while not stop.wait(0.005):
            if gw.count() >= mark:
                gw.inject(Fault.status(429, retry_after="0.2"), on="any")
                mark += 15

    limiter = threading.Thread(target=rate_limit, daemon=True)
    limiter.start()
    started = time.monotonic()
    try:
        code, _, _ = batch(gw, capsys, str(manifest), "--out", "v", "--concurrency", "6")
    finally:
        stop.set()
        limiter.join()
    seconds = time.monotonic() - started
    out = images.parent / "v"
    faults = collections.Counter(r.fault for r in gw.requests if r.fault)
    statuses = collections.Counter(r.status for r in gw.requests if r.fault == "status")
    first = audit(gw, out)
    states = first.states()
    assert states["downloaded"] + states["failed"] + states["ambiguous"] == rows
    assert_clean(first)
    failed = {r.line: r.reason for r in first.rows if r.state is RowState.FAILED}
    marked = {n + 1: f"policy-{n}" for n in range(10, rows + 1, 10)}  # CSV line = row + 1
    assert {line: reason for line, reason in failed.items() if line in marked} == {
        line: reason for line, reason in marked.items() if line in failed}
    assert set(failed) <= set(marked)  # no row failed for a transient fault
    assert code == (ExitCode.AMBIGUOUS if states["ambiguous"] else ExitCode.TASK_FAILED)

    # resubmitting the ambiguous rows finishes the batch
    gw.clear_faults()
    ambiguous = {r.key for r in first.rows if r.state is RowState.AMBIGUOUS}
    code, _, _ = batch(gw, capsys, str(manifest), "--out", "v", "--resubmit-ambiguous")
    final = audit(gw, out)
    assert code == ExitCode.TASK_FAILED
    assert final.states() == {"downloaded": rows - len(marked), "failed": len(marked)}
    assert_clean(final, allow_ambiguous_duplicates=ambiguous)
    assert final.duplicates <= len(ambiguous)
    figures = {
        "rows": rows,
        "requests": len(gw.requests),
        "faults injected": dict(faults) | {"status codes": dict(statuses)},
        "tasks created": first.tasks,
        "downloaded": states["downloaded"],
        "failed (by [fake:fail])": states["failed"],
        "ambiguous": states["ambiguous"],
        "duplicates": first.duplicates,
        "lost": first.lost,
        "seconds": round(seconds, 2),
        "after --resubmit-ambiguous": {"tasks": final.tasks, "duplicates": final.duplicates,
                                       "lost": final.lost, **final.states()},
    }
    print("\nbatch figures:", json.dumps(figures, indent=2))
    assert first.duplicates == 0 and first.lost == 0
    assert sum(faults.values()) >= 20


# ============================================================================ crashes


def _command() -> list[str]:
    script = Path(sys.executable).parent / "kling-i2v"
    return [str(script)] if script.exists() else [sys.executable, "-m", "kling_i2v.cli"]


def spawn(gw: FakeGateway, manifest: Path, out: Path, *args: str,
          kill_at: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "ANYFAST_BASE_URL": gw.base_url, "ANYFAST_API_KEY": TOKEN}
    if kill_at is not None:
        env[KILL_AT_ENV] = kill_at
    return subprocess.Popen([*_command(), "batch", str(manifest), "--out", str(out), *FAST, *args],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def journal_states(out: Path) -> collections.Counter[str]:
    path = out / JOURNAL_NAME
    if not path.exists():
        return collections.Counter()
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return collections.Counter(s for (s,) in db.execute("SELECT state FROM rows"))
    except sqlite3.OperationalError:  # the schema is still being created
        return collections.Counter()


@pytest.mark.parametrize(
    ("point", "ambiguous_tasks"),
    [
        ("before-create:3", 0),     # submitting committed, nothing sent: ambiguous, no task
        ("after-create:3", 1),      # the gateway made the task, the journal never heard: ambiguous
        ("after-logged:3", None),   # the task log has the task id: the resume polls it
        ("after-submitted:3", None),
        ("after-download:2", None),  # the file is in place, `downloaded` not committed
    ],
)
def test_kill_at_a_named_point_then_resume(gw: FakeGateway, images: Path, capsys, point: str,
                                           ambiguous_tasks: int | None) -> None:
    # tasks long enough that every create is answered before the first download: a kill
    # after a download then never lands mid-create (which would rightly leave a row ambiguous)
    manifest = write_manifest(images, 6, seconds=60 if point.startswith("after-download") else None)
    out = images.parent / "v"
    # one create at a time: exactly one row is in doubt when the process dies mid-create
    process = spawn(gw, manifest, out, "--concurrency", "1", kill_at=point)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    code, summary, _ = batch(gw, capsys, str(manifest), "--out", str(out))
    result = audit(gw, out)
    assert_clean(result)  # nothing lost, nothing created twice
    ambiguous = [r for r in result.rows if r.state is RowState.AMBIGUOUS]
    if ambiguous_tasks is None:
        assert code == 0 and result.states() == {"downloaded": 6}
        return
    assert code == ExitCode.AMBIGUOUS and summary["recovered"] == 1
    (row,) = ambiguous
    assert result.per_row.get(row.key, 0) == ambiguous_tasks
    assert result.states() == {"downloaded": 5, "ambiguous": 1}

    code, _, _ = batch(gw, capsys, str(manifest), "--out", str(out), "--resubmit-ambiguous")
    result = audit(gw, out)
    assert code == 0 and result.states() == {"downloaded": 6}
    assert_clean(result, allow_ambiguous_duplicates={row.key})
    assert result.tasks == 6 + ambiguous_tasks


def test_kill_mid_run_then_resume(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 12, seconds=40)
    out = images.parent / "v"
    gw.inject(Fault.delay(0.05), on="create", times=None)  # creates in flight most of the time
    process = spawn(gw, manifest, out, "--concurrency", "3")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = journal_states(out)
        if states["submitted"] + states["succeeded"] + states["downloaded"] >= 5:
            break
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    gw.clear_faults()

    code, summary, _ = batch(gw, capsys, str(manifest), "--out", str(out))
    result = audit(gw, out)
    assert_clean(result)
    ambiguous = {r.key for r in result.rows if r.state is RowState.AMBIGUOUS}
    assert summary["recovered"] == len(ambiguous)
    code, _, _ = batch(gw, capsys, str(manifest), "--out", str(out), "--resubmit-ambiguous")
    result = audit(gw, out)
    assert code == 0 and result.states() == {"downloaded": 12}
    assert_clean(result, allow_ambiguous_duplicates=ambiguous)


def test_ctrl_c_records_the_creates_in_flight(gw: FakeGateway, images: Path, capsys) -> None:
    manifest = write_manifest(images, 10, seconds=50)
    out = images.parent / "v"
    gw.inject(Fault.delay(0.3), on="create", times=None)  # the signal lands mid-create
    process = spawn(gw, manifest, out, "--concurrency", "2", "--json")
    deadline = time.monotonic() + 20
    while journal_states(out)["submitted"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    summary = json.loads(stdout)
    assert summary["stopped"] == "interrupted" and summary["counts"]["ambiguous"] == 0
    assert summary["counts"]["submitting"] == 0
    gw.clear_faults()

    code, summary, _ = batch(gw, capsys, str(manifest), "--out", str(out))
    result = audit(gw, out)
    assert code == 0 and result.states() == {"downloaded": 10}
    assert_clean(result)
    assert result.tasks == 10


# ============================================================================ settling rows (engine API)


def run_engine(gw: FakeGateway, manifest: Path, out: Path, options: BatchOptions | None = None,
               observer: Any = None) -> BatchResult:
    options = options or BatchOptions(poll_interval=0.05)

    async def go() -> BatchResult:
        async with batch_client(options, TOKEN, base_url=gw.base_url) as kling:
            return await run_batch(read_rows(manifest), kling, out, options, observer)
    return asyncio.run(go())


def test_a_row_refused_before_sending_is_checked_again_on_every_run(gw: FakeGateway, images: Path) -> None:
    (images / "small.png").write_bytes(make_png(200, 200))
    manifest = images / "mixed.csv"
    manifest.write_text("image,prompt\ncat.png,a cat\nsmall.png,a small one\n")
    result = run_engine(gw, manifest, images.parent / "v")
    (bad,) = result.not_sent()
    assert bad.failure == "local" and "200" in (bad.reason or "") and len(gw.tasks) == 1
    assert result.refused() == [] and result.ambiguous() == []

    (images / "small.png").write_bytes(sample_image_path().read_bytes())  # fixed: no flag needed
    result = run_engine(gw, manifest, images.parent / "v")
    assert result.counts()[RowState.DOWNLOADED] == 2 and len(gw.tasks) == 2


def test_a_gateway_refusal_stays_failed_and_says_nothing_was_paid(gw: FakeGateway, images: Path) -> None:
    manifest = write_manifest(images, 2)
    gw.inject(Fault.status(400), on="create")
    result = run_engine(gw, manifest, images.parent / "v")
    (refused,) = result.refused()
    assert refused.failure == "gateway" and refused.task_id is None
    again = run_engine(gw, manifest, images.parent / "v")
    assert [r.key for r in again.refused()] == [refused.key] and len(gw.tasks) == 1
    retried = run_engine(gw, manifest, images.parent / "v", BatchOptions(poll_interval=0.05, retry_failed=True))
    assert retried.counts()[RowState.DOWNLOADED] == 2 and len(gw.tasks) == 2


def test_counts_given_to_the_observer_follow_every_commit(gw: FakeGateway, images: Path) -> None:
    manifest = write_manifest(images, 12, fail_every=5)
    seen: list[tuple[str, dict[RowState, int]]] = []
    states: dict[str, RowState] = {}

    class Recorder:
        def changed(self, row: JournalRow, counts: Any) -> None:
            states[row.key] = row.state
            expected = collections.Counter(states.values())
            expected[RowState.PENDING] += 12 - len(states)
            assert {s: n for s, n in counts.items() if n} == {s: n for s, n in expected.items() if n}
            seen.append((row.key, dict(counts)))

        def note(self, message: str) -> None:
            pass

    result = run_engine(gw, manifest, images.parent / "v", observer=Recorder())
    assert len(seen) >= 12 * 3 and seen[-1][1] == {**dict.fromkeys(RowState, 0), **result.counts()}


# ============================================================================ the account's task limit


def test_the_task_window_finds_the_limit_and_probes_rarely() -> None:
    window = TaskWindow(None, start=4)
    busy = 0
    for _ in range(3):  # slow start: each success with the window full widens it
        busy += 1
        window.created(busy)
    assert window.limit == 4
    busy += 1
    window.created(busy)
    assert window.limit == 5 and window.learned is None
    assert window.refused(busy_others=3) and window.limit == 3 and window.learned == 3
    successes = 0
    while window.limit == 3:
        window.created(3)
        successes += 1
    assert successes == 4 * 3 and window.limit == 4  # a probe one above, after 4 x limit successes
    assert window.refused(busy_others=3) and window.limit == 3
    successes = 0
    while window.limit == 3:
        window.created(3)
        successes += 1
    assert successes == 8 * 3  # a failed probe doubles the wait for the next one
    window.created(4)  # this probe went through: the account holds 4
    assert window.learned == 4 and window.limit == 4


def test_a_429_with_nothing_running_is_not_the_task_limit() -> None:
    window = TaskWindow(None, start=4)
    assert not window.refused(busy_others=0) and window.limit == 4 and window.limited == 1
    fixed = TaskWindow(2, start=4)
    assert fixed.limit == 2 and fixed.refused(busy_others=1) and fixed.limit == 2
    fixed.created(2)
    assert fixed.limit == 2 and not fixed.admits(2) and fixed.admits(1)


def test_polls_come_when_tasks_like_it_finished() -> None:
    guess = DurationGuess()
    assert guess.next_poll(age=5, scheduled=10, shortest=1) == 10  # nothing learned yet
    guess.finished(130)
    guess.finished(120)
    assert guess.next_poll(age=100, scheduled=10, shortest=1) == 10
    assert guess.next_poll(age=115, scheduled=10, shortest=1) == 5  # at 120, not at 125
    assert guess.next_poll(age=121, scheduled=10, shortest=1) == pytest.approx(2.4)  # 2 % of 120
    assert guess.next_poll(age=200, scheduled=10, shortest=1) == 10  # very late: back on schedule


def test_a_client_with_its_own_retries_is_refused_before_anything_is_sent(gw: FakeGateway, images: Path) -> None:
    from kling_i2v import AsyncKlingClient, ConfigurationError

    async def go() -> None:
        async with AsyncKlingClient(TOKEN, base_url=gw.base_url) as kling:  # default: 3 retries
            await run_batch(read_rows(write_manifest(images, 2)), kling, images.parent / "v")

    with pytest.raises(ConfigurationError, match="batch_client"):
        asyncio.run(go())
    assert gw.count() == 0 and not (images.parent / "v").exists()


def test_url_images_are_not_sent_through_a_thread(gw: FakeGateway, images: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hopped: list[str] = []
    real = asyncio.to_thread

    async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        hopped.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    urls = images / "urls.csv"
    urls.write_text("image,prompt\n" + "".join(f"https://images.example/{n}.png,shot {n}\n" for n in range(4)))
    assert run_engine(gw, urls, images.parent / "u").counts()[RowState.DOWNLOADED] == 4
    assert "build_request_body" not in hopped and "_append" in hopped  # only the log's fsyncs
    hopped.clear()
    local = write_manifest(images, 2)
    assert run_engine(gw, local, images.parent / "l").counts()[RowState.DOWNLOADED] == 2
    assert hopped.count("build_request_body") == 2  # a file is read off the event loop
    hopped.clear()
    masked = images / "masked.csv"  # a URL image whose static_mask is a local file
    masked.write_text("image,static_mask,prompt\nhttps://images.example/1.png,cat.png,shot 1\n")
    assert run_engine(gw, masked, images.parent / "m").counts()[RowState.DOWNLOADED] == 1
    assert hopped.count("build_request_body") == 1


def test_the_account_limit_is_found_and_kept(images: Path) -> None:
    """A fake account that runs 3 tasks at once (unknown to the batch): every row is made,
    the batch ends knowing the limit, and few creates meet a 429 (issue 13.4)."""
    manifest = write_manifest(images, 24, seconds=20)
    with FakeGateway(tokens=(TOKEN,), time_scale=100.0, seed=3, max_running=3) as gateway:
        result = run_engine(gateway, manifest, images.parent / "v")
        statuses = collections.Counter(r.status for r in gateway.requests if r.target == "create")
    assert result.counts()[RowState.DOWNLOADED] == 24 and result.max_running == 3
    assert statuses[429] == result.limited and 1 <= result.limited <= 5, statuses
    assert result.creates_sent == statuses[200] + statuses[429]


def test_max_running_is_kept_without_a_429(images: Path) -> None:
    manifest = write_manifest(images, 12, seconds=20)
    with FakeGateway(tokens=(TOKEN,), time_scale=100.0, seed=4, max_running=2) as gateway:
        result = run_engine(gateway, manifest, images.parent / "v",
                            BatchOptions(poll_interval=0.05, max_running=2))
        limited = sum(1 for r in gateway.requests if r.target == "create" and r.status == 429)
    assert result.counts()[RowState.DOWNLOADED] == 12 and limited == 0 and result.max_running == 2


def test_the_account_limit_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "limit.json"
    done = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "benchmarks" / "bench_account_limit.py"),
                           "--smoke", "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (case,) = json.loads(out.read_text())["cases"]
    assert case["downloaded"] == case["rows"] and {"makespan_ratio", "share_429"} <= set(case)


def test_the_batch_client_pool_is_as_large_as_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import kling_i2v.client

    seen: dict[str, Any] = {}
    real = kling_i2v.client.AsyncKlingClient.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(kling_i2v.client.AsyncKlingClient, "__init__", spy)
    options = BatchOptions(concurrency=3, poll_concurrency=5, download_concurrency=2)
    client = batch_client(options, TOKEN, base_url="http://127.0.0.1:9")
    asyncio.run(client.close())
    assert seen["max_connections"] == 10 and seen["retry"].max_retries == 0
