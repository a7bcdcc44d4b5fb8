"""The `kling-i2v` commands: the argument parser (request options read from openapi.yaml)
and what each command does with the client."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import textwrap
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .._version import __version__
from ..errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    KlingError,
    RequestValidationError,
    TaskFailedError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from ..fields import IMAGE_FIELDS, Field, request_fields
from ..tasks import Task, TaskStatus
from ._exit import ExitCode, UsageError, epilog, exit_code_for
from ._output import Output, TaskProgress, print_task, task_json

if TYPE_CHECKING:
    from ..batch import BatchResult
    from ..client import KlingClient

__all__ = ["build_parser", "main"]

DEFAULT_WAIT_TIMEOUT = 1800.0
Handler = Callable[[argparse.Namespace, Output], ExitCode]

# `batch` takes every request option as a default for all rows, except these: the image
# comes from each row, and an external_task_id must be unique per task.
_NOT_BATCH_DEFAULTS = ("image", "external_task_id")


class _Stop(KlingError):
    """A command ends early with a given exit code and details for --json."""

    def __init__(self, message: str, code: ExitCode, **details: Any) -> None:
        self.code = code
        self.details = details
        super().__init__(message)


# ============================================================================ parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _common() -> _Parser:
    """Options every command takes, before or after its name."""
    common = _Parser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--base-url", default=argparse.SUPPRESS, metavar="URL",
                       help="the gateway (default: $ANYFAST_BASE_URL, else https://www.anyfast.ai)")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help="API token (default: $ANYFAST_API_KEY, which is safer: a command "
                            "line can be seen by other users)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON document on stdout instead of text")
    group.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="log HTTP requests and retries, show tracebacks (never the token)")
    return common


def _text(value: str) -> str:
    return value.replace("%", "%%")


def _converter(field: Field) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if field.kind == "json" and text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None
        try:
            return field.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    convert.__name__ = field.kind
    return convert


_METAVARS = {"image": "PATH|URL", "number": "NUMBER", "integer": "INT", "json": "JSON", "text": "TEXT"}


def _add_request_options(parser: argparse.ArgumentParser, skip: Sequence[str], title: str) -> None:
    group = parser.add_argument_group(title)
    for field in request_fields().values():
        if field.name in skip:
            continue
        help_text = field.help()
        options: dict[str, Any] = {"dest": field.name, "default": None}
        if field.kind == "boolean":
            options["action"] = argparse.BooleanOptionalAction
        elif field.kind == "choice":
            options["choices"] = field.choices
            if len(field.choices) > 4:
                options["metavar"] = field.name.upper()
                help_text += f" One of: {', '.join(field.choices)}."
        else:
            options["type"] = _converter(field)
            options["metavar"] = _METAVARS.get(field.kind, "VALUE")
        group.add_argument(field.option, help=_text(help_text), **options)


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="kling-i2v",
        description="Kling image-to-video through the anyfast.ai gateway.",
        epilog=epilog(),
        formatter_class=_Formatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"kling-i2v {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, summary: str, description: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=_paragraphs(description or summary),
                                  epilog=epilog(), formatter_class=_Formatter, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    def waiting(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--timeout", type=_seconds, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
                         help=f"give up waiting after this long (default: {DEFAULT_WAIT_TIMEOUT:g}); "
                              "the task keeps running")
        sub.add_argument("--poll-interval", type=_seconds, default=10.0, metavar="SECONDS",
                         help="longest pause between two status checks (default: 10)")

    def saving(sub: argparse.ArgumentParser, help_text: str) -> None:
        sub.add_argument("--out", type=_destination, metavar="FILE", help=help_text)
        sub.add_argument("--overwrite", action="store_true", help="replace an existing file")

    image = request_fields()["image"]
    create = command("create", _create, "create a task from an image and a prompt",
                     "Create an image-to-video task and print its id. --wait follows it with a "
                     "progress bar; --out also downloads the video.")
    create.add_argument("image", metavar="IMAGE", help=_text(image.help()))
    _add_request_options(create, skip=("image",), title="request options (from openapi.yaml)")
    follow = create.add_argument_group("after creating")
    follow.add_argument("--wait", action="store_true", help="wait until the task finishes")
    saving(create, "download the video to FILE (or into a folder); implies --wait")
    waiting(create)

    status = command("status", _status, "show a task's status")
    status.add_argument("task_id", metavar="TASK_ID")

    wait = command("wait", _wait, "wait for a task to finish, with a progress bar")
    wait.add_argument("task_id", metavar="TASK_ID")
    saving(wait, "download the video to FILE (or into a folder) once it is ready")
    waiting(wait)

    download = command("download", _download, "download a finished task's video")
    download.add_argument("task_id", metavar="TASK_ID")
    saving(download, "where to save it: a file, or a folder for TASK_ID.mp4 (default: .)")
    download.add_argument("--wait", action="store_true", help="wait for the task if it is still running")
    waiting(download)

    batch = command(
        "batch", _batch, "make many videos from a manifest or a folder of images; resumable",
        "Make one video per row of MANIFEST (.csv or .jsonl: columns are request fields, "
        "plus `output` for the file name; image paths are relative to the manifest), or per "
        "image of a folder (with --prompt). Request options below apply to every row that does "
        "not set them.\n\n"
        "A journal in the output folder records every row; running the same command again "
        "resumes: submitted tasks are polled, not created again, finished videos are skipped. "
        "Rows are matched by what they ask for, not by position: a row whose request changes "
        "(in the manifest, or through an option below) is a new row. "
        "A row whose create may or may not have reached the gateway is reported as ambiguous "
        "and created again only with --resubmit-ambiguous. Ctrl-C stops cleanly.",
    )
    batch.add_argument("source", type=Path, metavar="MANIFEST|FOLDER")
    batch.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="folder for the videos and the journal")
    run = batch.add_argument_group("running")
    run.add_argument("--concurrency", type=_count, default=4, metavar="N",
                     help="create requests in flight at once (default: 4)")
    run.add_argument("--poll-concurrency", type=_count, default=8, metavar="N",
                     help="status queries in flight at once (default: 8)")
    run.add_argument("--download-concurrency", type=_count, default=4, metavar="N",
                     help="downloads at once (default: 4)")
    run.add_argument("--poll-interval", type=_seconds, default=10.0, metavar="SECONDS",
                     help="longest pause between two status checks of a task (default: 10)")
    run.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                     help="stop after this long; a re-run resumes (default: no limit)")
    run.add_argument("--max-attempts", type=_count, default=8, metavar="N",
                     help="tries per create refused by a gateway error, and per download (default: 8)")
    run.add_argument("--resubmit-ambiguous", action="store_true",
                     help="create again the rows whose earlier create may have made a task "
                          "(this may pay twice)")
    run.add_argument("--retry-failed", action="store_true", help="create again the rows that failed")
    _add_request_options(batch, skip=_NOT_BATCH_DEFAULTS,
                         title="request options for every row (from openapi.yaml)")

    fake = command("fake-gateway", _fake_gateway, "run the offline fake gateway, for experiments",
                   "Run the fake anyfast.ai gateway (kling_i2v.testing) on loopback until Ctrl-C. "
                   "It prints the ANYFAST_BASE_URL and ANYFAST_API_KEY to use with it.")
    fake.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    fake.add_argument("--port", type=int, default=8000, help="0 picks a free port (default: 8000)")
    fake.add_argument("--accept-token", action="append", metavar="TOKEN",
                      help="a token the fake accepts; repeatable (default: sk-fake)")
    fake.add_argument("--time-scale", type=float, default=1.0,
                      help="simulated seconds per real second (default: 1)")
    fake.add_argument("--task-seconds", type=float, default=10.0,
                      help="how long a task takes, in simulated seconds (default: 10)")
    fake.add_argument("--seed", type=int, default=0, help="seed for task ids and random faults")
    fake.add_argument("--fault-rate", type=_rate, action="append", default=[], metavar="KEY=RATE",
                      help="random faults, e.g. 429=0.1, 5xx=0.05, reset=0.02; repeatable")
    return parser


def _paragraphs(text: str) -> str:
    return "\n\n".join(textwrap.fill(p, 88) for p in text.split("\n\n"))


def _destination(text: str) -> Path:
    """--out: a file, or a folder when it exists or is written with a trailing slash."""
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)):
        path.mkdir(parents=True, exist_ok=True)  # download() takes an existing folder as one
    return path


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _rate(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=RATE, got {text!r}") from None


# ============================================================================ main


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `kling-i2v` command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    output = Output(json_mode="--json" in arguments)
    try:
        args = build_parser().parse_args(arguments)
    except UsageError as exc:
        output.error(str(exc), ExitCode.INVALID_INPUT)
        return ExitCode.INVALID_INPUT
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    output = Output(json_mode=getattr(args, "json", False),
                    secret=getattr(args, "token", None) or os.environ.get("ANYFAST_API_KEY"))
    debug = getattr(args, "debug", False)
    log_handler = _debug_logging(output) if debug else None
    handler: Handler = args.handler
    # SIGTERM ends a command the way Ctrl-C does (exit 130, the task id printed); batch
    # installs its own handler for a graceful stop
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(handler(args, output))
    except _Stop as stop:
        output.error(str(stop), stop.code, **stop.details)
        return stop.code
    except KeyboardInterrupt:
        output.error("interrupted", ExitCode.INTERRUPTED)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error ends as one line and an exit code
        code = exit_code_for(exc)
        if debug:
            output.debug("".join(traceback.format_exception(exc)))
        output.error(_message(exc, args), code, **_details(exc))
        return code
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if log_handler is not None:
            for name in ("kling_i2v", "httpx"):
                logging.getLogger(name).removeHandler(log_handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Redacting(logging.Filter):
    def __init__(self, output: Output) -> None:
        super().__init__()
        self._output = output

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._output.redact(record.getMessage())
        record.args = None
        return True


def _debug_logging(output: Output) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redacting(output))
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    for name in ("kling_i2v", "httpx"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    return handler


def _message(error: BaseException, args: argparse.Namespace) -> str:
    if isinstance(error, RequestValidationError):
        on_cli = args.handler is _create
        return "invalid request: " + "; ".join(
            f"{_option_path(v.path) if on_cli else v.path}: {v.rule}"
            + ("" if v.rule.endswith(")") else f" ({_got(v)})")
            for v in error.violations
        )
    if isinstance(error, TaskNotFoundError):
        task_id = getattr(args, "task_id", None)
        return f"the gateway knows no task {task_id}" if task_id else str(error)
    if isinstance(error, AuthenticationError):
        return f"the gateway refused the API token ({error}); check ANYFAST_API_KEY or --token"
    if isinstance(error, APIConnectionError):
        return f"{error} (gateway: {getattr(args, 'base_url', None) or os.environ.get('ANYFAST_BASE_URL') or 'https://www.anyfast.ai'})"
    if isinstance(error, AmbiguousCreateError):
        return (f"{error}. The gateway has no lookup by external id: check your anyfast.ai "
                "task list (or your callback_url) for it before creating it again")
    if isinstance(error, WaitTimeoutError):
        return f"{error}; it may still finish: kling-i2v wait {error.task_id}"
    if isinstance(error, FileExistsError):
        return f"{error.filename or error}: the file exists; pass --overwrite to replace it" \
            if error.filename else f"{error}; pass --overwrite to replace it"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    if exit_code_for(error) is ExitCode.ERROR:
        return f"unexpected {type(error).__name__}: {error} (--debug shows the traceback)"
    return " ".join(str(error).split()) if "\n" not in str(error) else str(error)


def _got(violation: Any) -> str:
    from ..errors import MISSING, shorten

    return "missing" if violation.value is MISSING else f"got {shorten(violation.value)}"


def _option_path(path: str) -> str:
    """`cfg_scale` -> `--cfg-scale`, `image` -> `IMAGE`, in a violation's path."""
    fields = request_fields()

    def one(part: str) -> str:
        head, sep, rest = part.partition("[") if "[" in part else part.partition(".")
        if head == "image":
            return "IMAGE" + sep + rest
        return (fields[head].option if head in fields else head) + sep + rest

    return " + ".join(one(p) for p in path.split(" + "))


def _details(error: BaseException) -> dict[str, Any]:
    from ..manifest import ManifestError

    if isinstance(error, TaskFailedError):
        return {"task": task_json(error.task)}
    if isinstance(error, WaitTimeoutError):
        return {"task_id": error.task_id,
                "task": task_json(error.task) if error.task is not None else None}
    if isinstance(error, AmbiguousCreateError):
        return {"external_task_id": error.external_task_id}
    if isinstance(error, RequestValidationError):
        return {"violations": [{"path": v.path, "rule": v.rule} for v in error.violations]}
    if isinstance(error, APIStatusError):
        return {"status_code": error.status_code, "gateway_code": error.code,
                "request_id": error.request_id}
    if isinstance(error, ManifestError):
        return {"problems": list(error.problems)}
    return {}


# ============================================================================ commands


def _token(args: argparse.Namespace) -> str:
    token = getattr(args, "token", None) or os.environ.get("ANYFAST_API_KEY")
    if not token or not token.strip():
        raise UsageError("no API token: set ANYFAST_API_KEY (or pass --token)")
    return token


def _client(args: argparse.Namespace) -> KlingClient:
    from ..client import KlingClient
    from ..polling import PollPolicy

    interval = getattr(args, "poll_interval", 10.0)
    poll = PollPolicy(initial_interval=min(1.0, interval), max_interval=interval)
    return KlingClient(_token(args), base_url=getattr(args, "base_url", None), poll=poll)


def _request_fields(args: argparse.Namespace, skip: Sequence[str]) -> dict[str, Any]:
    return {name: value for name in request_fields() if name not in skip
            and (value := getattr(args, name, None)) is not None}


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an --out that cannot be written before anything is paid for."""
    out = getattr(args, "out", None)
    if out is None:
        return
    target = Path(out)
    folder = target if target.is_dir() or str(out).endswith(("/", os.sep)) else target.parent
    if folder is not target and target.exists() and not args.overwrite:
        raise _Stop(f"{target}: the file exists; pass --overwrite to replace it (nothing was sent)",
                    ExitCode.INVALID_INPUT)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise _Stop(f"{out}: cannot write a file there (nothing was sent)", ExitCode.INVALID_INPUT)


def _create(args: argparse.Namespace, output: Output) -> ExitCode:
    from ..requests import new_external_task_id

    _check_out(args)
    fields = _request_fields(args, skip=("image",))
    fields["image"] = args.image
    # ours, not the client's: if the answer is lost, this is how the task is found
    external_task_id = fields.setdefault("external_task_id", new_external_task_id())
    with _client(args) as kling:
        try:
            task = kling.create(**fields)
        except KeyboardInterrupt:
            raise _Stop(f"interrupted while the create was in flight: the task may exist "
                        f"(external_task_id {external_task_id})", ExitCode.INTERRUPTED,
                        external_task_id=external_task_id) from None
        if not (args.wait or args.out):
            def human(out: Output) -> None:
                out.line(f"created task {task.task_id} ({task.status.value})", style="green")
                out.line(f"external id  {external_task_id}")
                out.note(f"follow it with: kling-i2v wait {task.task_id}")

            output.emit(task_json(task), human)
            return ExitCode.OK
        output.note(f"created task {task.task_id} (external id {external_task_id})")
        return _follow(args, output, kling, task)


def _status(args: argparse.Namespace, output: Output) -> ExitCode:
    with _client(args) as kling:
        task = kling.get(args.task_id)
    output.emit(task_json(task), lambda out: print_task(out, task))
    return ExitCode.OK


def _wait(args: argparse.Namespace, output: Output) -> ExitCode:
    _check_out(args)
    with _client(args) as kling:
        return _follow(args, output, kling, args.task_id)


def _download(args: argparse.Namespace, output: Output) -> ExitCode:
    _check_out(args)
    with _client(args) as kling:
        task = kling.get(args.task_id)
        if task.status is TaskStatus.FAILED:
            raise TaskFailedError(task)
        if task.status is not TaskStatus.SUCCEEDED and not args.wait:
            raise _Stop(f"task {task.task_id} is not finished ({task.status.value}, "
                        f"{task.progress}%): add --wait, or run kling-i2v wait {task.task_id} --out FILE",
                        ExitCode.NOT_FINISHED, task=task_json(task))
        if args.out is None:
            args.out = Path.cwd()
        return _follow(args, output, kling, task)


def _follow(args: argparse.Namespace, output: Output, kling: KlingClient, task: Task | str) -> ExitCode:
    """Wait for the task with a progress bar, download it if --out, print the result."""
    task_id = task.task_id if isinstance(task, Task) else task
    if isinstance(task, Task) and task.status is TaskStatus.SUCCEEDED:
        done = task
    else:
        with TaskProgress(output, f"task {task_id}") as bar:
            try:
                done = kling.wait(task, timeout=args.timeout, on_progress=bar.update)
            except KeyboardInterrupt:
                raise _Stop(f"interrupted; task {task_id} keeps running on the gateway: "
                            f"kling-i2v wait {task_id}", ExitCode.INTERRUPTED, task_id=task_id) from None
    try:
        path = kling.download(done, args.out, overwrite=args.overwrite) if args.out else None
    except FileExistsError:
        raise  # "pass --overwrite" says what to do
    except OSError as exc:  # the task is paid for and done: say how to still get the video
        raise _Stop(f"task {done.task_id} succeeded but the video could not be saved "
                    f"({exc}); get it with: kling-i2v download {done.task_id} --out FILE",
                    ExitCode.ERROR, task=task_json(done)) from None
    data = {**task_json(done), "file": str(path.resolve()) if path else None}

    def human(out: Output) -> None:
        out.line(f"task {done.task_id} succeeded", style="green")
        if path is not None:
            out.line(f"saved  {path} ({path.stat().st_size:,} bytes)")
        else:
            for url in done.video_urls:
                out.line(f"video  {url}")

    output.emit(data, human)
    return ExitCode.OK


def _batch(args: argparse.Namespace, output: Output) -> ExitCode:
    import asyncio

    from .._http import RetryPolicy
    from ..batch import BatchOptions, run_batch
    from ..client import AsyncKlingClient
    from ..manifest import read_rows
    from ._output import BatchDisplay, batch_json, print_batch

    defaults = _request_fields(args, skip=_NOT_BATCH_DEFAULTS)
    for name in IMAGE_FIELDS:  # paths on the command line are relative to where it is run
        value = defaults.get(name)
        if isinstance(value, str) and "://" not in value:
            defaults[name] = str(Path(value).expanduser().resolve())
    rows = read_rows(args.source, defaults)
    token = _token(args)
    options = BatchOptions(
        concurrency=args.concurrency, poll_concurrency=args.poll_concurrency,
        download_concurrency=args.download_concurrency, poll_interval=args.poll_interval,
        timeout=args.timeout, resubmit_ambiguous=args.resubmit_ambiguous,
        retry_failed=args.retry_failed, max_attempts=args.max_attempts,
    )
    output.note(f"{len(rows)} row(s) from {args.source}; videos and journal in {args.out}")

    async def run(display: BatchDisplay) -> BatchResult:
        # no retries in the client: the batch retries, pausing every worker on a 429
        async with AsyncKlingClient(token, base_url=getattr(args, "base_url", None),
                                    retry=RetryPolicy(max_retries=0)) as kling:
            return await run_batch(rows, kling, args.out, options, display)

    with BatchDisplay(output, len(rows)) as display:
        result = asyncio.run(run(display))
    code = _batch_code(result)
    if result.error is not None and not output.json_mode:
        output.error(_message(result.error, args), code)
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


def _fake_gateway(args: argparse.Namespace, output: Output) -> ExitCode:
    import signal
    import threading

    from ..testing import FakeGateway

    try:
        gateway = FakeGateway(tokens=args.accept_token or ("sk-fake",), host=args.host,
                              port=args.port, time_scale=args.time_scale,
                              task_seconds=args.task_seconds, seed=args.seed)
        if args.fault_rate:
            gateway.set_fault_rates(dict(args.fault_rate), seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stopped = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stopped.set())
    try:
        with gateway:
            output.set_secret(None)  # the fake's token is made up: showing it is the point

            def human(out: Output) -> None:
                out.line(f"export ANYFAST_BASE_URL={gateway.base_url}")
                out.line(f"export ANYFAST_API_KEY={gateway.token}")
                out.note("fake gateway listening (offline, made-up token); Ctrl-C stops it")

            output.emit({"base_url": gateway.base_url, "token": gateway.token}, human)
            stopped.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.OK
