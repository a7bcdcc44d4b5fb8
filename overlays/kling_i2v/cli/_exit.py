"""How `kling-i2v` ends: every exit code in one place, with what it means."""

from __future__ import annotations

import enum
import textwrap

from ..errors import (
    AmbiguousCreateError,
    APIError,
    ConfigurationError,
    ImageError,
    RequestValidationError,
    TaskFailedError,
    WaitTimeoutError,
)

__all__ = ["ExitCode", "UsageError", "epilog", "exit_code_for"]


class UsageError(Exception):
    """A command line argparse (or the command) refused."""


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    INVALID_INPUT = 2
    API_ERROR = 3
    TASK_FAILED = 4
    NOT_FINISHED = 5
    AMBIGUOUS = 6
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "unexpected error (a bug: --debug shows the traceback)",
    ExitCode.INVALID_INPUT: "invalid input: bad option, manifest or image, missing file, a "
                            "request openapi.yaml refuses, no token; nothing was sent",
    ExitCode.API_ERROR: "the gateway refused the request or could not be reached "
                        "(bad token, 4xx, 5xx after retries)",
    ExitCode.TASK_FAILED: "the task failed (batch: at least one row failed)",
    ExitCode.NOT_FINISHED: "not finished yet: --timeout passed, or the task is still running "
                           "(batch: re-run to resume)",
    ExitCode.AMBIGUOUS: "a create was sent but its outcome is unknown: a task may exist, "
                        "so check before creating it again",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


def epilog() -> str:
    lines = ["exit codes:"]
    for code in ExitCode:
        lines.append(textwrap.fill(code.meaning, 88, initial_indent=f"  {code.value:>3}  ",
                                   subsequent_indent=" " * 7))
    return "\n".join(lines)


def exit_code_for(error: BaseException) -> ExitCode:
    from ..journal import JournalError
    from ..manifest import ManifestError

    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, AmbiguousCreateError):
        return ExitCode.AMBIGUOUS
    if isinstance(error, TaskFailedError):
        return ExitCode.TASK_FAILED
    if isinstance(error, WaitTimeoutError):
        return ExitCode.NOT_FINISHED
    if isinstance(error, RequestValidationError | ImageError | ConfigurationError | ManifestError
                  | JournalError | UsageError | OSError):
        return ExitCode.INVALID_INPUT
    if isinstance(error, APIError):
        return ExitCode.API_ERROR
    return ExitCode.ERROR
