"""Suite 3, fault storm: 200 tasks through the batch runner while the fake gateway answers
10% of API requests with 429, 5% with a 5xx, resets 3% of connections before answering,
and drops 1% of creates after making their task (the ambiguous case; the first two creates
are always dropped too, so that case is never missing from a run).

What must hold when the run ends (the fake gateway's own record is the ground truth):
- every row is in a final state: downloaded, failed (its task failed) or ambiguous;
- no row has two tasks, and a row the journal does not mark ambiguous has exactly one, the
  one whose task id the journal holds (no double payment);
- every task the gateway accepted can be found in the journal (by its external_task_id),
  and every downloaded row's file holds the gateway's video (nothing lost).

The storm is seeded: the fake draws its faults from random.Random(42), so a run meets the
same faults in the same order of requests (which order the batch's workers make them in
varies a little with timing).
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter, defaultdict
from pathlib import Path

from kling_i2v import RetryPolicy
from kling_i2v.batch import BatchOptions, batch_client, run_batch
from kling_i2v.journal import Journal, RowState
from kling_i2v.manifest import read_rows
from kling_i2v.testing import FakeGateway, Fault
from kling_i2v.testing.assets import sample_video_bytes

from tests.hostile import figures

TOKEN = "sk-hostile-storm-0003"
ROWS = 200
FAIL_EVERY = 25  # every 25th row's task fails upstream: "failed" is a final state too
RATES = {"429": 0.10, "5xx": 0.05, "reset": 0.03, "drop_after_create": 0.01}
SEED = 42
FORCED_DROPS = 2


def write_manifest(folder: Path) -> Path:
    path = folder / "storm.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "prompt", "output"])
        for i in range(ROWS):
            marker = " [fake:fail=storm casualty]" if i % FAIL_EVERY == FAIL_EVERY - 1 else ""
            writer.writerow([f"https://images.example/shot-{i}.png", f"shot {i} of the storm{marker}",
                             f"shot-{i:03d}.mp4"])
    return path


def test_a_fault_storm_loses_no_task_and_pays_for_none_twice(tmp_path: Path) -> None:
    rows = read_rows(write_manifest(tmp_path))
    assert len(rows) == ROWS
    out = tmp_path / "videos"
    options = BatchOptions(
        concurrency=16, poll_concurrency=32, download_concurrency=8, poll_interval=0.05,
        timeout=150.0, max_attempts=8,
        # the storm's 429s carry Retry-After: 1; cap the shared pause so the suite stays fast
        backoff=RetryPolicy(initial_delay=0.01, max_delay=0.05, max_retry_after=0.05),
    )
    started = time.monotonic()
    with FakeGateway(tokens=[TOKEN], time_scale=200, seed=SEED) as gw:
        gw.set_fault_rates(RATES, seed=SEED)
        # 1% of ~230 creates may draw no drop at all: make sure the ambiguous case happens
        gw.inject(Fault.drop_after_create(), on="create", times=FORCED_DROPS)

        async def run() -> object:
            # the batch's own client set-up: no retries in the client, the batch decides
            async with batch_client(options, TOKEN, base_url=gw.base_url) as kling:
                return await run_batch(rows, kling, out, options)

        result = asyncio.run(run())
        requests = gw.requests
        tasks = gw.tasks
    seconds = time.monotonic() - started

    with Journal.in_folder(out) as journal:
        journal_rows = {r.key: r for r in journal.rows()}
        attempts = journal.attempts()
    by_external = {a.external_task_id: a for a in attempts}

    # what the gateway did
    faults = Counter(r.fault for r in requests if r.fault)
    by_rate_key = Counter(
        ("429" if r.status == 429 else "5xx") if r.fault == "status"
        else {"reset_before_response": "reset"}.get(r.fault or "", r.fault)
        for r in requests if r.fault
    )
    api_requests = sum(1 for r in requests if r.target in ("create", "query"))
    creates_sent = sum(1 for r in requests if r.target == "create")

    # every accepted task, traced back to its row through the journal
    tasks_of_row: dict[str, list[str]] = defaultdict(list)
    untraceable = []
    for task_id, task in tasks.items():
        attempt = by_external.get(task.external_task_id or "")
        if attempt is None:
            untraceable.append(task_id)
        else:
            tasks_of_row[attempt.key].append(task_id)

    states = Counter(r.state.value for r in journal_rows.values())
    not_final = [r.key for r in journal_rows.values() if not r.state.final]
    duplicates = {k: v for k, v in tasks_of_row.items() if len(v) > 1}
    wrong_task = [
        r.key for r in journal_rows.values()
        if r.state is not RowState.AMBIGUOUS and r.task_id is not None
        and tasks_of_row.get(r.key) != [r.task_id]
    ]
    unrecorded = [  # a task for a row whose journal entry does not say it was accepted or may have been
        k for k, ids in tasks_of_row.items()
        if journal_rows[k].state is not RowState.AMBIGUOUS and journal_rows[k].task_id not in ids
    ]
    video = sample_video_bytes()
    bad_files = [
        r.key for r in journal_rows.values()
        if r.state is RowState.DOWNLOADED and (out / r.output).read_bytes() != video
    ]
    failed_without_a_failed_task = [
        r.key for r in journal_rows.values()
        if r.state is RowState.FAILED and not (r.task_id and tasks[r.task_id].fail_reason)
    ]
    ambiguous_with_a_task = sum(1 for r in journal_rows.values()
                                if r.state is RowState.AMBIGUOUS and tasks_of_row.get(r.key))
    lost = len(untraceable) + len(unrecorded) + len(not_final) + len(bad_files)

    figures.record("fault_storm", {
        "rows": ROWS,
        "fault_rates": RATES,
        "seconds": round(seconds, 1),
        "api_requests": api_requests,
        "creates_sent": creates_sent,
        "faults_injected": sum(faults.values()),
        "of_which_forced_drops_after_create": FORCED_DROPS,
        "faults_by_kind": dict(sorted(by_rate_key.items())),
        "tasks_created_by_the_gateway": len(tasks),
        "rows_by_final_state": dict(sorted(states.items())),
        "ambiguous_rows_whose_task_exists": ambiguous_with_a_task,
        "rows_not_final": len(not_final),
        "tasks_lost": lost,
        "duplicates": len(duplicates),
        "rows_with_the_wrong_task": len(wrong_task),
        "rows_failed_without_a_failed_task": len(failed_without_a_failed_task),
        "batch_stopped": getattr(result, "stopped", None),
    })

    assert getattr(result, "stopped", None) == "finished", getattr(result, "error", None)
    assert len(journal_rows) == ROWS
    assert not_final == []
    assert duplicates == {}, f"rows with more than one task: {duplicates}"
    assert wrong_task == []
    assert untraceable == [], "tasks the gateway accepted that the journal cannot account for"
    assert unrecorded == []
    assert bad_files == []
    assert failed_without_a_failed_task == [], "rows failed although their task did not"
    assert states["failed"] <= ROWS // FAIL_EVERY
    # the storm did happen
    assert faults["status"] > 0 and faults["reset_before_response"] > 0
    assert faults.get("drop_after_create", 0) >= FORCED_DROPS
    assert ambiguous_with_a_task >= FORCED_DROPS, "a dropped create's task must be found through the journal"
