"""The batch against its floor: `run_batch` on a manifest of N rows next to plain httpx
doing the same create / query / download calls under the same limits, in the same run.

The floor is what any batch must do at the least: for each row one create (at most
`concurrency` in flight), the first query after the same delay the batch waits, one
download (at most `download_concurrency` in flight), written to a file; nothing
recorded, nothing retried. Ours also keeps its crash-safe journal, which is the cost
being measured.

Also here: peak RSS of a batch of 8 rows of 10 MB local images at concurrency 4, against
the same batch with URL images, each in a fresh process.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from harness import (
    CREATE_PATH,
    PROMPT,
    TOKEN,
    URL_IMAGE,
    Loopback,
    Sizes,
    Target,
    median,
    peak_rss_kib,
    reset_peak_rss,
    row,
    rss_kib,
    spread,
)

CONCURRENCY = 4
# Short enough that the batch is about per-row cost, not waiting: the floor waits the same.
POLL_INTERVAL = 0.05


def _options() -> Any:
    from kling_i2v.batch import BatchOptions

    return BatchOptions(concurrency=CONCURRENCY, poll_interval=POLL_INTERVAL)


def _client(server: Loopback, options: Any) -> Any:
    from kling_i2v import batch

    if hasattr(batch, "batch_client"):  # the batch's own way to make its client
        return batch.batch_client(options, TOKEN, base_url=server.base_url)
    from kling_i2v import AsyncKlingClient, RetryPolicy

    return AsyncKlingClient(TOKEN, base_url=server.base_url, retry=RetryPolicy(max_retries=0))


def write_manifest(folder: Path, images: list[str]) -> Path:
    path = folder / "shots.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "prompt"])
        for image in images:
            writer.writerow([image, PROMPT])
    return path


def url_images(count: int) -> list[str]:
    return [f"{URL_IMAGE}?n={i}" for i in range(count)]


async def run_ours(server: Loopback, manifest: Path, out: Path) -> float:
    from kling_i2v.batch import run_batch
    from kling_i2v.manifest import read_rows

    rows = read_rows(manifest)
    options = _options()
    client = _client(server, options)
    try:
        start = time.perf_counter()
        result = await run_batch(rows, client, out, options)
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    done = sum(1 for r in result.rows if r.state.value in ("downloaded", "done"))
    if done != len(rows):
        states = {r.state.value for r in result.rows}
        raise RuntimeError(f"the batch finished {done} of {len(rows)} rows ({states}, {result.stopped})")
    return elapsed


async def run_floor(server: Loopback, count: int, out: Path) -> float:
    options = _options()
    first_poll = POLL_INTERVAL / 10
    limits = httpx.Limits(max_connections=getattr(options, "connections", 16),
                          max_keepalive_connections=getattr(options, "connections", 16))
    creating = asyncio.Semaphore(options.concurrency)
    polling = asyncio.Semaphore(options.poll_concurrency)
    downloading = asyncio.Semaphore(options.download_concurrency)
    out.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as raw:

        async def one(index: int, image: str) -> None:
            async with creating:
                response = await raw.post(CREATE_PATH, json={"image": image, "prompt": PROMPT})
                response.raise_for_status()
                task_id = response.json()["task_id"]
            await asyncio.sleep(first_poll)
            async with polling:
                response = await raw.get(f"{CREATE_PATH}/{task_id}")
                response.raise_for_status()
                url = response.json()["data"]["data"]["data"]["task_result"]["videos"][0]["url"]
            async with downloading:
                response = await raw.get(url)
                response.raise_for_status()
                (out / f"{index}.mp4").write_bytes(response.content)

        start = time.perf_counter()
        await asyncio.gather(*(one(i, image) for i, image in enumerate(url_images(count))))
        return time.perf_counter() - start


def batch_rows(server: Loopback, sizes: Sizes) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    per_row: dict[int, float] = {}
    for count, rounds in sizes.batch_rows:
        ours_s: list[float] = []
        floor_s: list[float] = []
        for index in range(rounds):
            with tempfile.TemporaryDirectory(prefix="kling-bench-batch-") as work:
                folder = Path(work)
                manifest = write_manifest(folder, url_images(count))
                pair = [("ours", ours_s), ("floor", floor_s)]
                for side, values in pair if index % 2 == 0 else reversed(pair):
                    gc.collect()
                    out = folder / side
                    if side == "ours":
                        values.append(asyncio.run(run_ours(server, manifest, out)))
                    else:
                        values.append(asyncio.run(run_floor(server, count, out)))
                    shutil.rmtree(out, ignore_errors=True)
        ours_ms = [v / count * 1e3 for v in ours_s]
        floor_ms = [v / count * 1e3 for v in floor_s]
        per_row[count] = median(ours_ms)
        results.append(row(
            f"batch_{count}_url_rows", median(ours_ms), median(floor_ms), "ms/row", Target(1.25),
            rows=count, rounds=len(ours_ms), concurrency=CONCURRENCY, poll_interval_s=POLL_INTERVAL,
            ours_total_s=[round(v, 2) for v in ours_s], floor_total_s=[round(v, 2) for v in floor_s],
            baseline_is="raw httpx.AsyncClient: create, query after the same first delay, "
                        "download to a file; the same concurrency limits and pool size; no journal",
            ours_spread=spread(ours_ms), baseline_spread=spread(floor_ms),
        ))
    counts = sorted(per_row)
    if len(counts) >= 2:
        small, large = counts[0], counts[-1]
        results.append(row(
            f"batch_per_row_{large}_vs_{small}", per_row[large], per_row[small], "ms/row",
            Target(1.10), ours_is=f"our ms/row at {large} rows", baseline_is=f"at {small} rows",
        ))
    return results


# --------------------------------------------------------------------------- big images, RSS


def batch_rss(server: Loopback, sizes: Sizes, image: Path, variant: str) -> dict[str, Any]:
    """One fresh process: peak RSS growth of a batch of `sizes.rss_batch_rows` rows at
    concurrency 4, the rows' images all local 10 MB files or all URLs."""
    with tempfile.TemporaryDirectory(prefix="kling-bench-rss-") as work:
        folder = Path(work)
        if variant == "local":
            images = []
            for i in range(sizes.rss_batch_rows):
                copy = folder / f"img{i}.jpg"  # a file per row, as a real batch has
                shutil.copyfile(image, copy)
                images.append(str(copy))
        else:
            images = url_images(sizes.rss_batch_rows)
        (folder / "warm").mkdir()
        warm = write_manifest(folder / "warm", url_images(2))
        asyncio.run(run_ours(server, warm, folder / "warm-out"))  # imports, first-use caches
        manifest = write_manifest(folder, images)
        gc.collect()
        before = rss_kib()
        reset_peak_rss()
        asyncio.run(run_ours(server, manifest, folder / "out"))
        peak = peak_rss_kib()
    return {"variant": variant, "growth_kib": peak - before, "peak_kib": peak}


# --------------------------------------------------------------------------- per-commit cost


class _CountsReader:
    """An observer doing what the CLI's progress display does with each change: read the
    counts by state (a live display that recounted rows was the O(n^2) term of issue 12)."""

    def __init__(self) -> None:
        self.seen = 0

    def changed(self, row: Any, counts: Any) -> None:
        self.seen += sum(counts.values())

    def note(self, message: str) -> None:
        pass


def _commits_per_row(rows_in_journal: int, sample: int) -> float:
    """Seconds per journal commit (a row's four transitions, each passed through the run's
    bookkeeping and an observer) with `rows_in_journal` rows in the journal and the run."""
    from kling_i2v._engine import Engine
    from kling_i2v.batch import BatchOptions
    from kling_i2v.journal import Journal, NewRow
    from kling_i2v.manifest import ManifestRow

    with tempfile.TemporaryDirectory(prefix="kling-bench-journal-") as work:
        keys = [f"row-{i:06d}" for i in range(rows_in_journal)]
        fields = {"image": URL_IMAGE, "prompt": PROMPT}
        manifest = [ManifestRow(line=i + 2, key=k, written=fields, fields=fields, output=f"{k}.mp4")
                    for i, k in enumerate(keys)]
        engine = Engine(manifest, None, Path(work), BatchOptions(), _CountsReader())  # type: ignore[arg-type]
        with Journal(Path(work) / "journal.sqlite3") as journal:
            journal.add(NewRow(key=k, line=i + 2, image=URL_IMAGE, output=f"{k}.mp4", fields=fields)
                        for i, k in enumerate(keys))
            for row in journal.rows():
                engine._commit(row)
            step = max(1, rows_in_journal // sample)
            chosen = keys[::step][:sample]
            start = time.perf_counter()
            for n, key in enumerate(chosen):
                engine._commit(journal.submitting(key, f"ext-{n}"))
                engine._commit(journal.submitted(key, f"{880000000000000000 + n}"))
                engine._commit(journal.succeeded(key, f"https://cdn.example/{n}.mp4"))
                engine._commit(journal.downloaded(key))
            return (time.perf_counter() - start) / (4 * len(chosen))


def commit_cost(sizes: Sizes) -> list[dict[str, Any]]:
    small, large = sizes.commit_rows
    # interleaved rounds: each round builds both journals afresh
    small_us: list[float] = []
    large_us: list[float] = []
    for index in range(sizes.commit_rounds):
        pair = [(small, small_us), (large, large_us)]
        for count, values in pair if index % 2 == 0 else reversed(pair):
            gc.collect()
            values.append(_commits_per_row(count, sizes.commit_sample) * 1e6)
    return [row(
        f"batch_commit_{large}_vs_{small}_rows", median(large_us), median(small_us), "us/commit",
        Target(1.10),
        ours_is=f"one journal commit with {large:,} rows in the journal and the run",
        baseline_is=f"the same with {small:,} rows",
        commits_timed=4 * sizes.commit_sample, rounds=sizes.commit_rounds,
        ours_spread=spread(large_us), baseline_spread=spread(small_us),
        note="SQLite journal (WAL) + the run's O(1) state counts + an observer reading them",
    )]
