"""The one way to start the fake gateway from a shell.

`python -m kling_i2v.testing` and `kling-i2v fake-gateway` both call `add_arguments` and
`run`, so they take the same flags and behave the same. It prints
`export ANYFAST_BASE_URL=...` and `export ANYFAST_API_KEY=...` on stdout as soon as it
listens (a shell can `eval` them), runs until SIGINT or SIGTERM, and exits 0; a port in
use or a bad value is one line on stderr and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import defaults
from .dialect import DIALECTS
from .faults import RATE_KEYS

if TYPE_CHECKING:
    from .server import FakeGateway

__all__ = ["add_arguments", "gateway_from", "run"]

USAGE_ERROR = 2


def _rate(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=RATE, got {text!r}")
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number after {key}=, got {value!r}") from None


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser, port: int = 8000) -> None:
    """The fake gateway's options, on `parser` (the library's defaults, but a fixed `port`)."""
    parser.add_argument("--host", default=defaults.HOST,
                        help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=port,
                        help="0 picks a free port (default: %(default)s)")
    token_help = f"a token the fake accepts; repeatable (default: {', '.join(defaults.TOKENS)})"
    try:
        parser.add_argument("--token", "--accept-token", dest="accept_token", action="append",
                            metavar="TOKEN", help=token_help)
    except argparse.ArgumentError:
        # kling-i2v's common options already have --token (the token clients send, dest
        # "token"): gateway_from accepts it too, so `--token X` means the same in both
        parser.add_argument("--accept-token", dest="accept_token", action="append",
                            metavar="TOKEN", help=token_help)
    parser.add_argument("--time-scale", type=float, default=defaults.TIME_SCALE,
                        help="simulated seconds per real second (default: %(default)g)")
    parser.add_argument("--task-seconds", type=float, default=defaults.TASK_SECONDS,
                        help="how long a task takes, in simulated seconds (default: %(default)g)")
    parser.add_argument("--seed", type=int, default=defaults.SEED,
                        help="seed for task ids and random faults (default: %(default)s)")
    parser.add_argument("--dialect", choices=list(DIALECTS), default=defaults.DIALECT,
                        help="which gateway version to imitate (default: %(default)s)")
    parser.add_argument("--balance", type=_limit, default=None, metavar="TASKS",
                        help="tasks the account can pay for, then 403 (default: no limit)")
    parser.add_argument("--max-running", type=_limit, default=None, metavar="TASKS",
                        help="tasks that may run at once, then 429 (default: no limit)")
    parser.add_argument(
        "--fault-rate", type=_rate, action="append", default=[], metavar="KEY=RATE",
        help=f"random faults; repeatable; keys: {', '.join(RATE_KEYS)} (e.g. 429=0.1)",
    )


def gateway_from(args: argparse.Namespace) -> FakeGateway:
    """The (not yet started) gateway the options ask for; ValueError for a bad value."""
    from .server import FakeGateway  # here: `kling-i2v --help` need not load the server

    tokens = list(args.accept_token or ())
    if getattr(args, "token", None):
        tokens.append(args.token)
    gateway = FakeGateway(
        tokens=tokens or defaults.TOKENS,
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        task_seconds=args.task_seconds,
        seed=args.seed,
        dialect=args.dialect,
        balance=args.balance,
        max_running=args.max_running or None,
    )
    if args.fault_rate:
        gateway.set_fault_rates(dict(args.fault_rate), seed=args.seed)
    return gateway


def _print_exports(base_url: str, token: str) -> None:
    print(f"export ANYFAST_BASE_URL={base_url}", flush=True)
    print(f"export ANYFAST_API_KEY={token}", flush=True)
    print(f"fake gateway listening on {base_url} (offline, made-up token; Ctrl-C stops it)",
          file=sys.stderr, flush=True)


def run(
    args: argparse.Namespace,
    announce: Callable[[str, str], None] = _print_exports,
    prog: str = "python -m kling_i2v.testing",
) -> int:
    """Serve until SIGINT/SIGTERM; `announce(base_url, token)` once listening. The exit code."""
    try:
        gateway = gateway_from(args)
        gateway.start()
    except (ValueError, OSError) as error:  # PortInUseError is an OSError with our message
        text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        print(f"{prog}: error: {text}", file=sys.stderr)
        return USAGE_ERROR
    stopped = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stopped.set())
    try:
        announce(gateway.base_url, gateway.token)
        stopped.wait()
    finally:
        gateway.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
