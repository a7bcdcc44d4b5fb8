"""The offline demo behind `make demo`: the whole job against the built-in fake gateway.

    python -m kling_i2v.demo [--out DIR] [--seconds N]

Starts the fake gateway on loopback, then does what a user does against the real
service: load an image, create a task, follow its progress, download the video.
It never reads ANYFAST_API_KEY or ANYFAST_BASE_URL, so it cannot reach anyfast.ai.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from .client import KlingClient
from .images import Image
from .polling import PollPolicy
from .tasks import Task
from .testing import FakeGateway, sample_image_path


def _bar(task: Task) -> None:
    filled = task.progress // 5
    line = f"\r  [{'#' * filled}{'.' * (20 - filled)}] {task.progress:3d}%  {task.status.value:<9}"
    sys.stdout.write(line)
    sys.stdout.flush()
    if task.finished:
        sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kling_i2v.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="folder for the video (default: ./demo-output)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="how long the fake render takes, in real seconds (default: 4)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    with FakeGateway(task_seconds=args.seconds) as gateway:
        print(f"fake gateway listening on {gateway.base_url} (offline, no real token)")
        image = Image.from_path(sample_image_path())
        print(f"image: {image.source} ({image.kind}, {image.width}x{image.height})")
        poll = PollPolicy(initial_interval=0.2, max_interval=0.5)
        with KlingClient(gateway.token, base_url=gateway.base_url, poll=poll) as kling:
            fields = {"prompt": "the camera slowly pushes in on the scene", "mode": "std",
                      "duration": "5"}
            task = kling.create(image=image, prompt=fields["prompt"], mode=fields["mode"],
                                duration=fields["duration"])
            print(f"created task {task.task_id} (external id {task.external_task_id})")
            done = kling.wait(task, on_progress=_bar, timeout=120)
            path = kling.download(done, args.out / f"{done.task_id}.mp4", overwrite=True)
    size = path.stat().st_size
    print(f"video saved: {path.resolve()} ({size:,} bytes) in {time.monotonic() - started:.1f}s")
    from .gallery import gallery_for_task

    page = gallery_for_task(args.out, done, path, image=image.source, fields=fields)
    print(f"gallery: {page.resolve()} (open it in a browser)")
    print(next_steps(sample_image_path()))
    return 0


def next_steps(image: Path) -> str:
    """What to try next, with the command line of the environment the demo ran in."""
    script = Path(sys.executable).with_name("kling-i2v")
    kling = shlex.quote(str(_shown(script))) if script.exists() else "kling-i2v"
    activate = Path(sys.executable).with_name("activate")
    lines = [
        "",
        "next, the command line against the same offline fake gateway:",
        f"  {kling} fake-gateway --port 8765 &     # prints the two lines below",
        "  export ANYFAST_BASE_URL=http://127.0.0.1:8765 ANYFAST_API_KEY=sk-fake",
        f"  {kling} create {shlex.quote(str(image))} --prompt 'the camera pushes in' --wait --out demo.mp4",
        f"  {kling} batch {shlex.quote(str(image.parent))} --prompt 'slow zoom' --out videos --dry-run",
    ]
    if activate.exists():
        lines.append(f"(or `source {shlex.quote(str(_shown(activate)))}` once, then type kling-i2v)")
    lines.append("against anyfast.ai: set ANYFAST_API_KEY to your own token, leave ANYFAST_BASE_URL unset")
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


if __name__ == "__main__":
    raise SystemExit(main())
