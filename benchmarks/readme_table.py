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


def figure(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 10 else f"{value:.2f}"


def three(median: float, spread: dict[str, float] | None) -> str:
    if not spread:
        return figure(median)
    return f"{figure(spread['min'])} / **{figure(median)}** / {figure(spread['max'])}"


def line(r: dict[str, Any]) -> str:
    verdict = "" if r["met"] is None else "" if r["met"] else " **missed**"
    name = f"`{r['name']}`"
    unit = r["unit"].replace(" (higher is better)", ", higher is better")
    extra = ""
    if r["name"].startswith("async_creates_"):
        extra = (f"; TCP connections opened: ours {r['tcp_connections_opened_ours']}, "
                 f"httpx {r['tcp_connections_opened_baseline']}")
    return (f"| {name} | {three(r['ours'], r.get('ours_spread'))} | "
            f"{three(r['baseline'], r.get('baseline_spread'))} | {unit} | {r['ratio']:.3f} | "
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
