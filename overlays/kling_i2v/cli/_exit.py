"""How `kling-i2v` ends: every exit code in one place, with what it means, and the words
each error is shown with."""

from __future__ import annotations

import argparse
import enum
import errno
import os
import textwrap
from typing import Any

from ..errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    ImageError,
    NotAGatewayError,
    NotFoundError,
    RequestValidationError,
    TaskFailedError,
    TaskNotFoundError,
    WaitTimeoutError,
)

__all__ = ["ExitCode", "Stop", "UsageError", "details_for", "epilog", "exit_code_for", "message_for"]


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
    ExitCode.INVALID_INPUT: "invalid input or environment: bad option, manifest or image, "
                            "missing file, a request openapi.yaml refuses, no token, a full "
                            "disk; nothing was sent unless the message says otherwise",
    ExitCode.API_ERROR: "the gateway refused the request or could not be reached "
                        "(bad token, 4xx, 5xx after retries)",
    ExitCode.TASK_FAILED: "the task failed (batch: at least one row failed)",
    ExitCode.NOT_FINISHED: "not finished yet: --timeout passed, or the task is still running "
                           "(batch: re-run to resume)",
    ExitCode.AMBIGUOUS: "a create was sent but its outcome is unknown: a task may exist, "
                        "so check before creating it again",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


class Stop(Exception):
    """CLI control flow, not a library error: ends a command early with an exit code."""

    def __init__(self, message: str, code: ExitCode, **details: Any) -> None:
        self.code = code
        self.details = details
        super().__init__(message)


def epilog() -> str:
    lines = ["exit codes:"]
    for code in ExitCode:
        lines.append(textwrap.fill(code.meaning, 88, initial_indent=f"  {code.value:>3}  ",
                                   subsequent_indent=" " * 7))
    return "\n".join(lines)


def exit_code_for(error: BaseException) -> ExitCode:
    from ..journal import JournalError
    from ..manifest import ManifestError

    if isinstance(error, Stop):
        return error.code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, AmbiguousCreateError):
        return ExitCode.AMBIGUOUS
    if isinstance(error, TaskFailedError):
        return ExitCode.TASK_FAILED
    if isinstance(error, WaitTimeoutError):
        return ExitCode.NOT_FINISHED
    if isinstance(error, RequestValidationError | ImageError | ConfigurationError | ManifestError
                  | JournalError | UsageError | OSError) or _disk_full(error):
        return ExitCode.INVALID_INPUT
    if isinstance(error, APIError):
        return ExitCode.API_ERROR
    return ExitCode.ERROR


def _disk_full(error: BaseException) -> bool:
    """SQLite's own words for ENOSPC (the journal cannot grow): sqlite3 raises
    OperationalError, not OSError (sqlite.org/rescode.html, SQLITE_FULL)."""
    import sqlite3

    return isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)


# ============================================================================ wording


def base_url_of(args: argparse.Namespace) -> str:
    """The gateway a command talks to, for messages."""
    from ..client import DEFAULT_BASE_URL

    return getattr(args, "base_url", None) or os.environ.get("ANYFAST_BASE_URL") or DEFAULT_BASE_URL


def message_for(error: BaseException, args: argparse.Namespace) -> str:
    """The one line (or block) a user reads for `error`."""
    if isinstance(error, Stop):
        return str(error)
    if isinstance(error, RequestValidationError):
        on_cli = getattr(args, "command", None) == "create"
        return "invalid request: " + "; ".join(
            ("" if v.rule.startswith(f"{v.path} ") else  # the rule names the field itself
             f"{_option_path(v.path) if on_cli else v.path}: ") + v.rule
            + f" ({_got(v)})" + (f"; {v.next_step(cli=True)}" if v.next_step() else "")
            for v in error.violations
        )
    if isinstance(error, TaskNotFoundError):
        task_id = getattr(args, "task_id", None)
        return f"the gateway knows no task {task_id}" if task_id else str(error)
    if isinstance(error, AuthenticationError):
        return f"the gateway refused the API token ({error}); check ANYFAST_API_KEY or --token"
    if isinstance(error, APIConnectionError):
        from ._context import connection_message

        return connection_message(error, base_url_of(args))
    # a wrong path shows as a 404 or, outside /v1 and /api, as new-api's web UI: 200
    # text/html (gateway-facts.md "Routes"), which the client raises as NotAGatewayError
    if isinstance(error, NotAGatewayError):  # its message gives the advice; say where to act
        return f"{error} (--base-url or ANYFAST_BASE_URL)"
    if isinstance(error, NotFoundError) and not isinstance(error, TaskNotFoundError):
        return f"{error}; {_base_url_hint(args)}"
    if isinstance(error, AmbiguousCreateError):
        return (f"{error}. The gateway has no lookup by external id: check your anyfast.ai "
                "task list (or your callback_url) for it before creating it again")
    if isinstance(error, WaitTimeoutError):
        from ._context import wait_command

        return f"{error}; it may still finish: {wait_command(args, error.task_id)}"
    if isinstance(error, ImageError):
        from ._media import fit_hint_for

        hint = fit_hint_for(error, args)
        return f"{error}; {hint}" if hint else str(error)
    if isinstance(error, FileExistsError):
        return f"{error.filename or error}: the file exists; pass --overwrite to replace it" \
            if error.filename else f"{error}; pass --overwrite to replace it"
    if _disk_full(error) or isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" ({error.filename})" if isinstance(error, OSError) and error.filename else ""
        return f"the disk is full{where}: free some space and run the same command again"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    if exit_code_for(error) is ExitCode.ERROR:
        return f"unexpected {type(error).__name__}: {error} (--debug shows the traceback)"
    return " ".join(str(error).split()) if "\n" not in str(error) else str(error)


def _base_url_hint(args: argparse.Namespace) -> str:
    """A wrong path under the right host is the usual cause: the gateway's routes start at
    its root (the `kling` route group, gateway-facts.md "Routes"), so a base URL ending in /v1 or
    /kling misses them."""
    from ..client import DEFAULT_BASE_URL

    return (f"check the base URL ({base_url_of(args)}): it is the gateway's root, like "
            f"{DEFAULT_BASE_URL}, without /v1 or /kling (--base-url or ANYFAST_BASE_URL)")


def _got(violation: Any) -> str:
    from ..errors import MISSING, shorten

    return "missing" if violation.value is MISSING else f"got {shorten(violation.value)}"


def _option_path(path: str) -> str:
    """`cfg_scale` -> `--cfg-scale`, `image` -> `IMAGE`, in a violation's path."""
    from ..fields import request_fields

    fields = request_fields()

    def one(part: str) -> str:
        head, sep, rest = part.partition("[") if "[" in part else part.partition(".")
        if head == "image":
            return "IMAGE" + sep + rest
        return (fields[head].option if head in fields else head) + sep + rest

    return " + ".join(one(p) for p in path.split(" + "))


def details_for(error: BaseException) -> dict[str, Any]:
    """What --json adds to an error document, beside its message."""
    from ..manifest import ManifestError
    from ._output import task_json

    if isinstance(error, Stop):
        return dict(error.details)
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
