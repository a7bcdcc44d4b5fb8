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
from collections.abc import Callable
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
    interleaved_many,
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


async def run_floor(server: Loopback, count: int, out: Path, our_pool: bool = False) -> float:
    """The floor: raw httpx doing each row's calls under the batch's limits, no journal.
    `our_pool`: on the pool our clients use (kling_i2v._pool) instead of httpcore's own,
    a reference that leaves only the client's and the journal's cost in the ratio."""
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
        if our_pool:
            from kling_i2v import _pool

            _pool.use_in(raw, limits)

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
        pool_s: list[float] = []
        for index in range(rounds):
            with tempfile.TemporaryDirectory(prefix="kling-bench-batch-") as work:
                folder = Path(work)
                manifest = write_manifest(folder, url_images(count))
                pair = [("ours", ours_s), ("floor", floor_s), ("floor_our_pool", pool_s)]
                for side, values in pair if index % 2 == 0 else reversed(pair):
                    gc.collect()
                    out = folder / side
                    if side == "ours":
                        values.append(asyncio.run(run_ours(server, manifest, out)))
                    else:
                        values.append(asyncio.run(run_floor(server, count, out,
                                                            our_pool=side == "floor_our_pool")))
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
            reference_floor_on_our_pool={
                "ratio": round(median(ours_s) / median(pool_s), 4),
                "floor_spread_ms": spread([v / count * 1e3 for v in pool_s]),
                "is": "the same raw httpx floor with its pool replaced by kling_i2v._pool "
                      "(interleaved with the other two in the same rounds)",
            },
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


class _Journalled:
    """A journal of `rows` rows with the run's bookkeeping over it (Engine._commit, which
    keeps the counts, and an observer reading them), built once and timed in rounds."""

    def __init__(self, folder: Path, rows: int) -> None:
        from kling_i2v._engine import Engine
        from kling_i2v.batch import BatchOptions
        from kling_i2v.journal import Journal, NewRow
        from kling_i2v.manifest import ManifestRow

        self.keys = [f"row-{i:06d}" for i in range(rows)]
        fields = {"image": URL_IMAGE, "prompt": PROMPT}
        manifest = [ManifestRow(line=i + 2, key=k, written=fields, fields=fields, output=f"{k}.mp4")
                    for i, k in enumerate(self.keys)]
        self.engine = Engine(manifest, None, folder, BatchOptions(), _CountsReader())  # type: ignore[arg-type]
        self.journal = Journal(folder / "journal.sqlite3")
        self.journal.add(NewRow(key=k, line=i + 2, image=URL_IMAGE, output=f"{k}.mp4", fields=fields)
                         for i, k in enumerate(self.keys))
        for row in self.journal.rows():
            self.engine._commit(row)
        self.rounds = 0

    def window(self, sample: int) -> list[str]:
        """`sample` consecutive rows from the middle: the batch's creators take pending rows
        in manifest order, so the rows changing at any moment sit side by side."""
        start = max(0, (len(self.keys) - sample) // 2)
        return self.keys[start:start + sample]

    def strided(self, sample: int) -> list[str]:
        """`sample` rows spread evenly over the journal (as a resume polling old rows can)."""
        return self.keys[::max(1, len(self.keys) // sample)][:sample]

    def round(self, keys: list[str]) -> tuple[float, float]:
        """Seconds per commit, (CPU, wall): each row's four transitions, pending to
        downloaded; then the rows go back to pending, untimed, for the next round."""
        from kling_i2v.journal import RowState

        commit, journal = self.engine._commit, self.journal
        self.rounds += 1
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        for n, key in enumerate(keys):
            commit(journal.submitting(key, f"ext-{self.rounds}-{n}"))
            commit(journal.submitted(key, f"{880000000000000000 + n}"))
            commit(journal.succeeded(key, f"https://cdn.example/{n}.mp4"))
            commit(journal.downloaded(key))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        for key in keys:
            commit(journal.reset(key, (RowState.DOWNLOADED,)))
        return cpu / (4 * len(keys)), wall / (4 * len(keys))


def commit_cost(sizes: Sizes) -> list[dict[str, Any]]:
    small_rows, large_rows = sizes.commit_rows
    sample = min(sizes.commit_sample, small_rows)
    with tempfile.TemporaryDirectory(prefix="kling-bench-journal-") as work:
        (Path(work) / "small").mkdir()
        (Path(work) / "large").mkdir()
        small = _Journalled(Path(work) / "small", small_rows)
        large = _Journalled(Path(work) / "large", large_rows)
        walls: dict[str, list[float]] = {}
        try:
            def timed(name: str, journalled: _Journalled, keys: list[str]) -> Callable[[], float]:
                def round_() -> float:
                    cpu, wall = journalled.round(keys)
                    walls.setdefault(name, []).append(wall * 1e6)
                    return cpu * 1e6

                return round_

            large_us, small_us, large_strided, small_strided = interleaved_many(
                [timed("large", large, large.window(sample)), timed("small", small, small.window(sample)),
                 timed("large_strided", large, large.strided(sample)),
                 timed("small_strided", small, small.strided(sample))],
                rounds=sizes.commit_rounds, warmup=sizes.warmup)
        finally:
            small.journal.close()
            large.journal.close()

    def wall(name: str) -> dict[str, Any]:
        return {"median_us": round(median(walls[name]), 2), "spread": spread(walls[name])}

    return [row(
        f"batch_commit_{large_rows}_vs_{small_rows}_rows", median(large_us), median(small_us),
        "us/commit (CPU)", Target(1.10),
        ours_is=f"one journal commit with {large_rows:,} rows in the journal and the run",
        baseline_is=f"the same with {small_rows:,} rows",
        commits_per_round=4 * sample, rounds=sizes.commit_rounds,
        ours_spread=spread(large_us), baseline_spread=spread(small_us),
        measured="process CPU time per commit (on a machine shared with other work, wall time "
                 "per commit varied 2.5x between rounds; it is kept below)",
        wall={"ours": wall("large"), "baseline": wall("small"),
              "ratio": round(median(walls["large"]) / median(walls["small"]), 4)},
        rows_committed="a window of consecutive rows, as a batch takes them (manifest order)",
        strided={"ours_us": round(median(large_strided), 2), "baseline_us": round(median(small_strided), 2),
                 "ratio": round(median(large_strided) / median(small_strided), 4),
                 "ours_spread": spread(large_strided), "baseline_spread": spread(small_strided),
                 "wall_ratio": round(median(walls["large_strided"]) / median(walls["small_strided"]), 4),
                 "rows_committed": "spread evenly over the journal: every commit dirties another "
                                   "page, and each WAL checkpoint copies all of them"},
        note="SQLite journal (WAL, synchronous=NORMAL) + the run's O(1) state counts + an "
             "observer reading them; rounds interleaved over journals built once",
    )]
