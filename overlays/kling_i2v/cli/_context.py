"""What the commands that talk to the gateway share: the token, a client, the request
fields given as options, and the check of --out before anything is paid for."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._fields_doc import IMAGE_FIELDS
from ._exit import ExitCode, Stop, UsageError

if TYPE_CHECKING:
    from ..client import KlingClient
    from ..errors import APIConnectionError

__all__ = ["check_image_paths", "check_out", "client", "connection_message", "download_command",
           "request_options", "token", "wait_command"]


def token(args: argparse.Namespace) -> str:
    value = getattr(args, "token", None) or os.environ.get("ANYFAST_API_KEY")
    if not value or not value.strip():
        raise UsageError("no API token: set ANYFAST_API_KEY (or pass --token)")
    return value


def client(args: argparse.Namespace) -> KlingClient:
    from ..client import KlingClient
    from ..polling import PollPolicy

    interval = getattr(args, "poll_interval", None) or PollPolicy().max_interval
    poll = PollPolicy(initial_interval=min(PollPolicy().initial_interval, interval),
                      max_interval=interval)
    return KlingClient(token(args), base_url=getattr(args, "base_url", None), poll=poll)


def connection_message(error: APIConnectionError, base_url: str) -> str:
    """A failed connection with the next step. When no connection was made at all
    (`request_sent` False: refused, host not found, connect timeout), the usual cause is
    the address: nothing listens there, or the base URL is mistyped."""
    if error.request_sent:
        return f"{error} (gateway: {base_url})"
    return (f"{error} (gateway: {base_url}); is the gateway running there? check the address "
            "in --base-url or ANYFAST_BASE_URL")


def request_options(args: argparse.Namespace, skip: Sequence[str]) -> dict[str, Any]:
    """The request fields given on the command line (those left out are not sent)."""
    from ..fields import request_fields  # the spec's tables: only `create` and `batch` need them

    return {name: value for name in request_fields() if name not in skip
            and (value := getattr(args, name, None)) is not None}


def check_image_paths(fields: Mapping[str, Any]) -> None:
    """Refuse a local image that is not a regular file before anything opens it: opening
    a FIFO blocks until someone writes to it, and a device never ends."""
    from .._inputs import regular_file

    for name in IMAGE_FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and os.path.exists(value):  # a URL is no existing path
            try:
                regular_file(value, f"{name}:")
            except ValueError as exc:
                raise UsageError(str(exc)) from None


def check_out(args: argparse.Namespace) -> None:
    """Refuse an --out that cannot be written before anything is paid for."""
    out = getattr(args, "out", None)
    if out is None:
        return
    target = Path(out)
    folder = target if target.is_dir() or str(out).endswith(("/", os.sep)) else target.parent
    if folder is not target and target.exists() and not args.overwrite:
        raise Stop(f"{target}: the file exists; pass --overwrite to replace it (nothing was sent)",
                   ExitCode.INVALID_INPUT)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise Stop(f"{out}: cannot write a file there (nothing was sent)", ExitCode.INVALID_INPUT)


def wait_command(args: argparse.Namespace, task_id: str) -> str:
    """`kling-i2v wait TASK_ID` with the options the user gave that still matter (where
    the video goes, which gateway, how long to wait), so a hint can be pasted as is.
    Never the token: it belongs in the environment, not in a printed command."""
    import shlex

    from ..client import DEFAULT_WAIT_TIMEOUT
    from ..polling import PollPolicy

    words = ["kling-i2v", "wait", task_id, *_save_options(args.out if _has(args, "out") else None,
                                                          _has(args, "overwrite"))]
    # a --timeout shorter than the default is not repeated: the hint follows that time
    # running out, and the same short wait would most likely run out again at once
    timeout = getattr(args, "timeout", None)
    if timeout is not None and timeout > DEFAULT_WAIT_TIMEOUT:
        words += ["--timeout", f"{timeout:g}"]
    interval = getattr(args, "poll_interval", None)
    if interval is not None and interval != PollPolicy().max_interval:
        words += ["--poll-interval", f"{interval:g}"]
    return shlex.join(words + _gateway_options(args))


def download_command(args: argparse.Namespace, task_id: str, out: str | os.PathLike[str] | None,
                     *, overwrite: bool = False) -> str:
    """`kling-i2v download TASK_ID --out OUT` against the gateway the user named: the hint
    after a video that could not be fetched (the task is done and paid for; Kling deletes
    its videos after 30 days, gateway-facts.md "Query"; how long the gateway's result_url
    works, no source says)."""
    import shlex

    return shlex.join(["kling-i2v", "download", task_id, *_save_options(out, overwrite),
                       *_gateway_options(args)])


def _has(args: argparse.Namespace, name: str) -> bool:
    return getattr(args, name, None) not in (None, False)


def _save_options(out: str | os.PathLike[str] | None, overwrite: bool) -> list[str]:
    if out is None:
        return []
    # a folder keeps its trailing slash, so the command saves TASK_ID.mp4 into it again
    words = ["--out", str(out) + ("/" if Path(out).is_dir() and not str(out).endswith("/") else "")]
    return words + (["--overwrite"] if overwrite else [])


def _gateway_options(args: argparse.Namespace) -> list[str]:
    words = ["--base-url", args.base_url] if getattr(args, "base_url", None) else []
    return words + (["--json"] if getattr(args, "json", False) else [])
