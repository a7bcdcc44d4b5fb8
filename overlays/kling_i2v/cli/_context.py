"""What the commands that talk to the gateway share: the token, a client, the request
fields given as options, and the check of --out before anything is paid for."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fields import request_fields
from ._exit import ExitCode, Stop, UsageError

if TYPE_CHECKING:
    from ..client import KlingClient

__all__ = ["check_out", "client", "request_options", "token"]


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


def request_options(args: argparse.Namespace, skip: Sequence[str]) -> dict[str, Any]:
    """The request fields given on the command line (those left out are not sent)."""
    return {name: value for name in request_fields() if name not in skip
            and (value := getattr(args, name, None)) is not None}


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
