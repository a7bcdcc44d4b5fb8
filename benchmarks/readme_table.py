"""Print README's performance table from benchmarks/results.json, so the figures in the
README are the measured ones, not typed by hand.

    .venv/bin/python benchmarks/readme_table.py [results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import min_median_max


def line(r: dict[str, Any]) -> str:
    verdict = "" if r["met"] is None else "" if r["met"] else " **missed**"
    name = f"`{r['name']}`"
    unit = r["unit"].replace(" (higher is better)", ", higher is better")
    extra = ""
    if r["name"].startswith("async_creates_"):
        extra = (f"; TCP connections opened per round, at most: ours "
                 f"{r['tcp_connections_opened_ours']}, httpx {r['tcp_connections_opened_baseline']}")
        same_pool = r.get("reference_raw_httpx_on_our_pool")
        if same_pool:  # the pool's share of the gain apart from the client's own cost
            extra += f"; against raw httpx on our pool (kling_i2v._pool): {same_pool['ratio']:.3f}"
    floor_pool = r.get("reference_floor_on_our_pool")
    if floor_pool:
        extra += f"; against the floor on our pool (kling_i2v._pool): {floor_pool['ratio']:.3f}"
    return (f"| {name} | {min_median_max(r['ours'], r.get('ours_spread'), bold='**')} | "
            f"{min_median_max(r['baseline'], r.get('baseline_spread'), bold='**')} | {unit} | "
            f"{r['ratio']:.3f} | "
            f"{r['target']}{verdict}{extra} |")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else HERE / "results.json"
    rows = json.loads(path.read_text())
    print("| row | ours min / **median** / max | baseline min / **median** / max | unit | ratio | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
