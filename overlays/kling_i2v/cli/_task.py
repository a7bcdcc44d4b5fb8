"""The commands about one existing task: `status`, `wait`, `download`; and `follow`, which
`create --wait` shares."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import APIError, TaskFailedError
from ..tasks import Task, TaskStatus
from ._context import check_out, client, download_command, wait_command
from ._exit import ExitCode, Stop
from ._options import Parser, add_command, add_save_options, add_wait_options
from ._output import Output, TaskProgress, print_task, task_json

if TYPE_CHECKING:
    from ..client import KlingClient

__all__ = ["follow", "register"]


def register(commands: Any, common: Parser) -> None:
    status = add_command(commands, common, "status", _status, "show a task's status")
    status.add_argument("task_id", metavar="TASK_ID")

    wait = add_command(commands, common, "wait", _wait, "wait for a task to finish, with a progress bar")
    wait.add_argument("task_id", metavar="TASK_ID")
    add_save_options(wait, "download the video to FILE (or into a folder) once it is ready")
    add_wait_options(wait)

    download = add_command(commands, common, "download", _download, "download a finished task's video")
    download.add_argument("task_id", metavar="TASK_ID")
    add_save_options(download, "where to save it: a file, or a folder for TASK_ID.mp4 (default: .)")
    download.add_argument("--wait", action="store_true", help="wait for the task if it is still running")
    add_wait_options(download)


def _status(args: argparse.Namespace, output: Output) -> ExitCode:
    with client(args) as kling:
        task = kling.get(args.task_id)
    output.emit(task_json(task), lambda out: print_task(out, task))
    return ExitCode.OK


def _wait(args: argparse.Namespace, output: Output) -> ExitCode:
    check_out(args)
    with client(args) as kling:
        return follow(args, output, kling, args.task_id)


def _download(args: argparse.Namespace, output: Output) -> ExitCode:
    check_out(args)
    with client(args) as kling:
        task = kling.get(args.task_id)
        if task.status is TaskStatus.FAILED:
            raise TaskFailedError(task)
        if task.status is not TaskStatus.SUCCEEDED and not args.wait:
            raise Stop(f"task {task.task_id} is not finished ({task.status.value}, "
                       f"{task.progress}%): add --wait, or run {wait_command(args, task.task_id)}"
                       + ("" if args.out else " --out ."),
                       ExitCode.NOT_FINISHED, task=task_json(task))
        if args.out is None:
            args.out = Path.cwd()
        return follow(args, output, kling, task)


def follow(args: argparse.Namespace, output: Output, kling: KlingClient, task: Task | str, *,
           about_create: Mapping[str, Any] | None = None) -> ExitCode:
    """Wait for the task with a progress bar, download it if --out, print the result
    (with --json, one document that also holds `about_create`: the create's warnings and
    what --fit did)."""
    task_id = task.task_id if isinstance(task, Task) else task
    if isinstance(task, Task) and task.status is TaskStatus.SUCCEEDED:
        done = task
    else:
        with TaskProgress(output, f"task {task_id}") as bar:
            try:
                done = kling.wait(task, timeout=args.timeout, on_progress=bar.update)
            except KeyboardInterrupt:
                raise Stop(f"interrupted; task {task_id} keeps running on the gateway: "
                           f"{wait_command(args, task_id)}", ExitCode.INTERRUPTED,
                           task_id=task_id) from None
    try:
        path = kling.download(done, args.out, overwrite=args.overwrite) if args.out else None
    except FileExistsError:
        raise  # "pass --overwrite" says what to do
    except APIError as exc:  # cut, too large, not a video, the CDN's refusal: the task is done
        raise Stop(f"task {done.task_id} succeeded but its video could not be fetched ({exc}); "
                   "nothing is lost: fetch it again with "
                   f"{download_command(args, done.task_id, args.out, overwrite=args.overwrite)}",
                   ExitCode.API_ERROR, task=task_json(done)) from None
    except OSError as exc:  # the task is paid for and done: say how to still get the video
        # a full disk or a folder gone is the environment's doing: exit 2, not "a bug"
        raise Stop(f"task {done.task_id} succeeded but the video could not be saved "
                   f"({exc.strerror or exc}); free the space or pick another place, then get it "
                   f"with: {download_command(args, done.task_id, 'FILE')}",
                   ExitCode.INVALID_INPUT, task=task_json(done)) from None
    data = {**task_json(done), "file": str(path.resolve()) if path else None,
            **(about_create or {})}

    def human(out: Output) -> None:
        out.line(f"task {done.task_id} succeeded", style="green")
        if path is not None:
            out.line(f"saved  {path} ({path.stat().st_size:,} bytes)")
        else:
            for url in done.video_urls:
                out.line(f"video  {url}")

    output.emit(data, human)
    return ExitCode.OK
