"""`kling-i2v batch`: one video per row of a manifest or per image of a folder, resumable.

The run itself is kling_i2v.batch's; this module turns options into `BatchOptions` (whose
defaults it shows, never repeats) and the result into a summary and an exit code."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..fields import IMAGE_FIELDS
from ._context import request_options, token
from ._exit import ExitCode, exit_code_for, message_for
from ._options import Parser, add_command, add_request_options, count, seconds
from ._output import Output

if TYPE_CHECKING:
    from ..batch import BatchResult

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
    run.add_argument("--timeout", type=seconds, default=default["timeout"], metavar="SECONDS",
                     help=f"stop after this long; a re-run resumes (default: {shown('timeout')})")
    run.add_argument("--max-attempts", type=count, default=default["max_attempts"], metavar="N",
                     help="tries per create refused by a gateway error, and per download "
                          f"(default: {shown('max_attempts')})")
    run.add_argument("--resubmit-ambiguous", action="store_true",
                     help="create again the rows whose earlier create may have made a task "
                          "(this may pay twice)")
    run.add_argument("--retry-failed", action="store_true", help="create again the rows that failed")
    add_request_options(batch, skip=_NOT_BATCH_DEFAULTS,
                        title="request options for every row (from openapi.yaml)")


def _batch(args: argparse.Namespace, output: Output) -> ExitCode:
    import asyncio

    from .._http import RetryPolicy
    from ..batch import BatchOptions, run_batch
    from ..client import AsyncKlingClient
    from ..manifest import read_rows
    from ._output import BatchDisplay, batch_json, print_batch

    defaults = request_options(args, skip=_NOT_BATCH_DEFAULTS)
    for name in IMAGE_FIELDS:  # paths on the command line are relative to where it is run
        value = defaults.get(name)
        if isinstance(value, str) and "://" not in value:
            defaults[name] = str(Path(value).expanduser().resolve())
    rows = read_rows(args.source, defaults)
    api_token = token(args)
    options = BatchOptions(
        concurrency=args.concurrency, poll_concurrency=args.poll_concurrency,
        download_concurrency=args.download_concurrency, poll_interval=args.poll_interval,
        timeout=args.timeout, resubmit_ambiguous=args.resubmit_ambiguous,
        retry_failed=args.retry_failed, max_attempts=args.max_attempts,
    )
    output.note(f"{len(rows)} row(s) from {args.source}; videos and journal in {args.out}")

    async def run(display: BatchDisplay) -> BatchResult:
        # no retries in the client: the batch retries, pausing every worker on a 429
        async with AsyncKlingClient(api_token, base_url=getattr(args, "base_url", None),
                                    retry=RetryPolicy(max_retries=0)) as kling:
            return await run_batch(rows, kling, args.out, options, display)

    with BatchDisplay(output, len(rows)) as display:
        result = asyncio.run(run(display))
    code = _batch_code(result)
    if result.error is not None and not output.json_mode:
        output.error(message_for(result.error, args), code)
    output.emit(batch_json(result, str(args.source), code),
                lambda out: print_batch(out, result, str(args.source)))
    return code


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
