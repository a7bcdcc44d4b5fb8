"""`main(argv)`: parse, run one command, and turn whatever happened into a message and an
exit code (see `_exit`)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from ._exit import ExitCode, Stop, UsageError, details_for, exit_code_for, message_for
from ._options import Handler
from ._output import Output
from ._parser import parse_args

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `kling-i2v` command; returns the exit code."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`kling-i2v ... | head`): stop quietly with 0, as Unix
        # tools do. stdout is pointed at /dev/null so that the interpreter's own flush at
        # exit does not fail again (docs.python.org/3/library/signal.html, "Note on
        # SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return ExitCode.OK


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    output = Output(json_mode="--json" in arguments)
    try:
        args = parse_args(arguments)
    except UsageError as exc:
        output.error(str(exc), ExitCode.INVALID_INPUT)
        return ExitCode.INVALID_INPUT
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    output = Output(json_mode=getattr(args, "json", False),
                    secret=getattr(args, "token", None) or os.environ.get("ANYFAST_API_KEY"))
    debug = getattr(args, "debug", False)
    # without --debug the library's log records are not shown: what a user needs from them
    # (capability warnings, retries that matter) the commands print themselves, and
    # logging's last-resort handler would print every warning again, once per create
    log_handler = _debug_logging(output) if debug else _quiet_logging()
    handler: Handler = args.handler
    # SIGTERM ends a command the way Ctrl-C does (exit 130, the task id printed); batch
    # installs its own handler for a graceful stop
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(handler(args, output))
    except KeyboardInterrupt:
        output.error("interrupted", ExitCode.INTERRUPTED)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every error ends as one line and an exit code
        code = exit_code_for(exc)
        if debug and not isinstance(exc, Stop):
            output.debug("".join(traceback.format_exception(exc)))
        output.error(message_for(exc, args), code, **details_for(exc))
        return code
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if log_handler is not None:
            for name in ("kling_i2v", "httpx"):
                logging.getLogger(name).removeHandler(log_handler)


def _quiet_logging() -> logging.Handler:
    handler = logging.NullHandler()
    for name in ("kling_i2v", "httpx"):
        logging.getLogger(name).addHandler(handler)
    return handler


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
