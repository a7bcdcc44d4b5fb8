"""`kling-i2v batch`: one video per row of a manifest or per image of a folder, resumable.

The run itself is kling_i2v.batch's; this module turns options into `BatchOptions` (whose
defaults it shows, never repeats) and the result into a summary and an exit code."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..fields import IMAGE_FIELDS
from ._context import download_command, request_options, token
from ._exit import ExitCode, Stop, exit_code_for, message_for
from ._media import add_fit_options, gallery_keeper, note_gallery
from ._options import (
    Parser,
    add_allow_unknown_model,
    add_command,
    add_request_options,
    count,
    seconds,
)
from ._output import Output

if TYPE_CHECKING:
    from ..batch import BatchResult
    from ..preflight import Preflight

__all__ = ["register"]

# `batch` takes every request option as a default for all rows, except these: the image
# comes from each row, and an external_task_id must be unique per task.
_NOT_BATCH_DEFAULTS = ("image", "external_task_id")

_DESCRIPTION = (
    "Make one video per row of MANIFEST (.csv or .jsonl: columns are request fields, "
    "plus `output` for the file name; image paths are relative to the manifest), or per "
    "image of a folder (with --prompt). Request options below apply to every row that does "
    "not set them.\n\n"
    "A journal in the output folder records every row; running the same command again "
    "resumes: submitted tasks are polled, not created again, finished videos are skipped. "
    "Rows are matched by what they ask for, not by position: a row whose request changes "
    "(in the manifest, or through an option below) is a new row. "
    "A row whose create may or may not have reached the gateway is reported as ambiguous "
    "and created again only with --resubmit-ambiguous. Ctrl-C stops cleanly."
)


def register(commands: Any, common: Parser) -> None:
    from ..batch import BatchOptions

    default = {field.name: field.default for field in attrs.fields(BatchOptions)}

    def shown(name: str) -> str:
        value = default[name]
        return "no limit" if value is None else f"{value:g}"

    batch = add_command(commands, common, "batch", _batch,
                        "make many videos from a manifest or a folder of images; resumable",
                        _DESCRIPTION)
    batch.add_argument("source", type=Path, metavar="MANIFEST|FOLDER")
    batch.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="folder for the videos and the journal")
    run = batch.add_argument_group("running")
    run.add_argument("--concurrency", type=count, default=default["concurrency"], metavar="N",
                     help=f"create requests in flight at once (default: {shown('concurrency')})")
    run.add_argument("--poll-concurrency", type=count, default=default["poll_concurrency"],
                     metavar="N",
                     help=f"status queries in flight at once (default: {shown('poll_concurrency')})")
    run.add_argument("--download-concurrency", type=count, default=default["download_concurrency"],
                     metavar="N", help=f"downloads at once (default: {shown('download_concurrency')})")
    run.add_argument("--poll-interval", type=seconds, default=default["poll_interval"],
                     metavar="SECONDS", help="longest pause between two status checks of a task "
                                             f"(default: {shown('poll_interval')})")
    run.add_argument("--max-running", type=count, default=default["max_running"], metavar="N",
                     help="tasks created but not finished at once, at most (default: found from "
                          "the gateway's answers: the account's own limit)")
    run.add_argument("--timeout", type=seconds, default=default["timeout"], metavar="SECONDS",
                     help=f"stop after this long; a re-run resumes (default: {shown('timeout')})")
    run.add_argument("--max-attempts", type=count, default=default["max_attempts"], metavar="N",
                     help="tries per create refused by a gateway error, and per download "
                          f"(default: {shown('max_attempts')})")
    run.add_argument("--resubmit-ambiguous", action="store_true",
                     help="create again the rows whose earlier create may have made a task "
                          "(this may pay twice)")
    run.add_argument("--retry-failed", action="store_true", help="create again the rows that failed")
    run.add_argument("--adopt", type=_adoption, action="append", default=[], metavar="ROW=TASK_ID",
                     help="link a task you found (in the anyfast.ai task list, or through your "
                          "callback_url, by its external_task_id) to an ambiguous row, given by its "
                          "line in the manifest; the run then polls and downloads it; repeatable")
    check = batch.add_argument_group("checking first")
    check.add_argument("--dry-run", action="store_true",
                       help="check every row and show what a run would do, then stop: nothing "
                            "is sent and no token is needed")
    check.add_argument("--skip-invalid", action="store_true",
                       help="run the valid rows even if others have problems (by default "
                            "nothing is sent while any row has one)")
    add_fit_options(batch)
    add_allow_unknown_model(check)
    add_request_options(batch, skip=_NOT_BATCH_DEFAULTS,
                        title="request options for every row (from openapi.yaml)")


def _adoption(text: str) -> tuple[str, str]:
    row, sep, task_id = text.partition("=")
    if not (sep and row.strip() and task_id.strip()):
        raise argparse.ArgumentTypeError(f"expected ROW=TASK_ID (a manifest line and a task id), "
                                         f"got {text!r}")
    return row.strip(), task_id.strip()


def _batch(args: argparse.Namespace, output: Output) -> ExitCode:
    import asyncio

    from ..batch import BatchOptions, adopt, batch_client, run_batch
    from ..journal import RowState
    from ..preflight import preflight
    from ._batch_output import BatchDisplay, batch_json, print_batch

    defaults = request_options(args, skip=_NOT_BATCH_DEFAULTS)
    for name in IMAGE_FIELDS:  # paths on the command line are relative to where it is run
        value = defaults.get(name)
        if isinstance(value, str) and "://" not in value:
            defaults[name] = str(Path(value).expanduser().resolve())
    report = preflight(args.source, defaults, fit=bool(args.fit),
                       allow_unknown_model=args.allow_unknown_model)
    for line in report.warning_lines():
        output.note(f"warning: {line}", style="yellow")
    if args.dry_run:
        return _dry_run(args, output, report)
    if report.problems and not (args.skip_invalid and report.rows):
        raise _refusal(report)
    if report.problems:
        output.note(f"skipping {report.invalid} row(s) with problems (--skip-invalid):", style="yellow")
        for line in report.problem_lines():
            output.note(f"  {line}", style="yellow")
    rows = list(report.rows)
    api_token = token(args)
    options = BatchOptions(
        concurrency=args.concurrency, poll_concurrency=args.poll_concurrency,
        download_concurrency=args.download_concurrency, poll_interval=args.poll_interval,
        max_running=args.max_running, timeout=args.timeout,
        resubmit_ambiguous=args.resubmit_ambiguous, retry_failed=args.retry_failed,
        max_attempts=args.max_attempts, fit=args.fit, allow_unknown_model=args.allow_unknown_model,
    )
    _check_adoptions(args, api_token)
    for row, task_id in args.adopt:
        linked = adopt(args.out, row, task_id)
        output.note(f"line {linked.line}: linked to task {task_id}; it is polled and downloaded now")
    output.note(f"{len(rows)} row(s) from {args.source}; videos and journal in {args.out}")
    keeper = gallery_keeper(args.out, rows, args.source)

    async def run(display: BatchDisplay) -> BatchResult:
        keeper.inner = display
        async with batch_client(options, api_token, base_url=getattr(args, "base_url", None)) as kling:
            return await run_batch(rows, kling, args.out, options, keeper)

    with BatchDisplay(output, len(rows)) as display:
        result = asyncio.run(run(display))
    page = keeper.finish(result.rows)
    code = _batch_code(result)
    if result.error is not None and not output.json_mode:
        output.error(message_for(result.error, args), code)
    rerun = shlex.join(["kling-i2v", "batch", str(args.source), "--out", str(args.out),
                        *(["--base-url", args.base_url] if getattr(args, "base_url", None) else [])])
    # a task that succeeded but whose video was not fetched (cut, too large, not a video):
    # the command that fetches just that one, beside the re-run that does them all
    fetch = {row.key: download_command(args, row.task_id, result.path_of(row))
             for row in result.rows if row.state is RowState.SUCCEEDED and row.task_id}
    # the pre-flight's warnings (printed on stderr before the run without --json)
    resumed = _resumed(result)

    def human(out: Output) -> None:
        print_batch(out, result, str(args.source), rerun, fetch)
        if resumed:
            out.line(resumed)

    output.emit({**batch_json(result, str(args.source), code, fetch),
                 "warnings": report.warning_lines(), "resumed": resumed or None}, human)
    note_gallery(output, page)
    return code


def _check_adoptions(args: argparse.Namespace, api_token: str) -> None:
    """Each --adopt's row is ambiguous and its task is one the gateway knows and that
    carries the row's external_task_id, before any row is linked: a mistyped id would
    otherwise turn a row whose task may exist into a failed one (the gateway answers 400
    `task_not_exist` for an id it does not know: gateway-facts.md, Errors), and another
    row's task would be linked to this one. Kling's reply in the query carries
    `task_info.external_task_id` (gateway-facts.md, Query); when it is absent, the id
    cannot be checked. Any other error of the query ends the command, nothing linked."""
    if not args.adopt:
        return
    from ..batchfolder import adoptable
    from ..client import KlingClient
    from ..errors import TaskNotFoundError

    rows = [(adoptable(args.out, row), task_id) for row, task_id in args.adopt]
    with KlingClient(api_token, base_url=getattr(args, "base_url", None)) as kling:
        for row, task_id in rows:
            try:
                task = kling.get(task_id)
            except TaskNotFoundError:
                raise Stop(f"--adopt {row.line}={task_id}: the gateway does not know task "
                           f"{task_id}; check the id (the task to link carries the "
                           f"external_task_id {row.external_task_id}). Line {row.line} stays "
                           "ambiguous; nothing was linked or sent", ExitCode.INVALID_INPUT) from None
            if task.external_task_id is not None and task.external_task_id != row.external_task_id:
                raise Stop(f"--adopt {row.line}={task_id}: task {task_id} carries external_task_id "
                           f"{task.external_task_id}, not line {row.line}'s "
                           f"{row.external_task_id}: it is another request's task. Line "
                           f"{row.line} stays ambiguous; nothing was linked or sent",
                           ExitCode.INVALID_INPUT)


def _resumed(result: BatchResult) -> str:
    """One line for a run that resumed an earlier one: what this run created, and what the
    earlier runs had already settled (a rerun with nothing to do shows the same table)."""
    from ..journal import RowState

    if not result.resumed:
        return ""
    earlier = [(RowState.DOWNLOADED, "already done"), (RowState.FAILED, "failed earlier"),
               (RowState.AMBIGUOUS, "ambiguous earlier"),
               (RowState.SUBMITTED, "running from earlier"),
               (RowState.SUCCEEDED, "to download from earlier")]
    told = [f"{result.resumed[state]} {text}" for state, text in earlier if result.resumed.get(state)]
    return f"resumed: {result.created} created" + "".join(f", {t}" for t in told)


_SHOWN_PROBLEMS = 20


def _refusal(report: Preflight) -> Stop:
    """Every problem, told once per kind, and that nothing was sent."""
    lines = report.problem_lines()
    shown = lines[:_SHOWN_PROBLEMS] + ([(f"... and {len(lines) - _SHOWN_PROBLEMS} more (--json lists "
                                        "them all)")] if len(lines) > _SHOWN_PROBLEMS else [])
    head = (f"{report.invalid} of {report.total} row(s) have problems" if report.invalid
            else "cannot be run")
    tail = "; --skip-invalid runs the others" if report.rows else ""
    return Stop(f"{report.manifest.source}: {head}; nothing was sent{tail}:"
                + "".join(f"\n  {line}" for line in shown), ExitCode.INVALID_INPUT, problems=lines,
                warnings=report.warning_lines())  # printed before it; with --json, here


def _batch_code(result: BatchResult) -> ExitCode:
    from ..journal import RowState

    if result.stopped == "error" and result.error is not None:
        return exit_code_for(result.error)
    if result.stopped == "interrupted":
        return ExitCode.INTERRUPTED
    counts = result.counts()
    if counts[RowState.AMBIGUOUS]:
        return ExitCode.AMBIGUOUS
    if counts[RowState.FAILED]:
        return ExitCode.TASK_FAILED
    if counts[RowState.DOWNLOADED] != len(result.rows):
        return ExitCode.NOT_FINISHED
    return ExitCode.OK


def _dry_run(args: argparse.Namespace, output: Output, report: Preflight) -> ExitCode:
    """The pre-flight and the plan; nothing sent. Exit 2 when a run would refuse to start."""
    from ..preflight import make_plan

    plan = make_plan(report.rows, args.out, retry_failed=args.retry_failed,
                     resubmit_ambiguous=args.resubmit_ambiguous)
    refused = bool(report.problems) and not (args.skip_invalid and report.rows)
    code = ExitCode.INVALID_INPUT if refused else ExitCode.OK
    actions = ("create", "poll", "download", "done", "failed", "ambiguous")
    data = {
        "dry_run": True, "source": str(args.source), "out": str(args.out), "exit_code": int(code),
        "rows": report.total, "valid": len(report.rows), "invalid": report.invalid,
        "problems": report.problem_lines(), "warnings": report.warning_lines(),
        "plan": {action: plan.count(action) for action in actions},
        "to_create": [{"model_name": model, "mode": mode, "duration": duration, "tasks": tasks,
                       "video_seconds": seconds}
                      for model, mode, duration, tasks, seconds in plan.totals],
    }

    def human(out: Output) -> None:
        out.line(f"dry run of {args.source}: {report.total} row(s), {len(report.rows)} valid, "
                 f"{report.invalid} with problems; nothing was sent")
        for line in report.problem_lines():
            out.line(f"  problem: {line}", style="red")
        counts = [f"{plan.count(a)} {'to ' + a if a in actions[:3] else a}" for a in actions
                  if plan.count(a)]
        out.line("plan: " + (", ".join(counts) if counts else "nothing to do"))
        if plan.totals:
            width = max(len("model"), *(len(t[0]) for t in plan.totals))
            out.line(f"  {'model':<{width}}  {'mode':<5} {'duration':>8} {'tasks':>6} {'video s':>8}")
            for model, mode, duration, tasks, seconds in plan.totals:
                out.line(f"  {model:<{width}}  {mode:<5} {duration:>8} {tasks:>6} {seconds:>8}")
            out.line(f"  {'total':<{width}}  {'':<5} {'':>8} {sum(t[3] for t in plan.totals):>6} "
                     f"{sum(t[4] for t in plan.totals):>8}")
        if refused:
            out.line("a run would send nothing until these are fixed "
                     "(or run the valid rows alone with --skip-invalid)", style="red")

    output.emit(data, human)
    return code
