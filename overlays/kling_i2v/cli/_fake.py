"""`kling-i2v fake-gateway`: the offline fake gateway (kling_i2v.testing) until Ctrl-C."""

from __future__ import annotations

import argparse
import inspect
import signal
import threading
from typing import Any

from ._exit import ExitCode, UsageError
from ._options import Parser, add_command
from ._output import Output

__all__ = ["register"]

# a fixed port, unlike the library's 0 (any free port): the printed export lines stay
# valid from one start to the next
_PORT = 8000


class _FakeDefault:
    """An option left out: FakeGateway's own default applies. It is read only when --help
    shows it, so that building the parser does not import kling_i2v.testing."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        from ..testing import FakeGateway

        value = inspect.signature(FakeGateway).parameters[self.name].default
        return ", ".join(value) if isinstance(value, tuple) else f"{value:g}" \
            if isinstance(value, float) else str(value)


class _Repeatable(argparse.Action):
    """action="append" whose default is a _FakeDefault, not a list."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest)
        setattr(namespace, self.dest, [*([] if isinstance(current, _FakeDefault) else current), values])


def register(commands: Any, common: Parser) -> None:
    fake = add_command(commands, common, "fake-gateway", _fake_gateway,
                       "run the offline fake gateway, for experiments",
                       "Run the fake anyfast.ai gateway (kling_i2v.testing) on loopback until Ctrl-C. "
                       "It prints the ANYFAST_BASE_URL and ANYFAST_API_KEY to use with it.")
    fake.add_argument("--host", default=_FakeDefault("host"),
                      help="address to listen on (default: %(default)s)")
    fake.add_argument("--port", type=int, default=_PORT, help="0 picks a free port (default: %(default)s)")
    fake.add_argument("--accept-token", action=_Repeatable, dest="tokens", metavar="TOKEN",
                      default=_FakeDefault("tokens"),
                      help="a token the fake accepts; repeatable (default: %(default)s)")
    fake.add_argument("--time-scale", type=float, default=_FakeDefault("time_scale"),
                      help="simulated seconds per real second (default: %(default)s)")
    fake.add_argument("--task-seconds", type=float, default=_FakeDefault("task_seconds"),
                      help="how long a task takes, in simulated seconds (default: %(default)s)")
    fake.add_argument("--seed", type=int, default=_FakeDefault("seed"),
                      help="seed for task ids and random faults (default: %(default)s)")
    fake.add_argument("--fault-rate", type=_rate, action="append", default=[], metavar="KEY=RATE",
                      help="random faults, e.g. 429=0.1, 5xx=0.05, reset=0.02; repeatable")


def _rate(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=RATE, got {text!r}") from None


def _fake_gateway(args: argparse.Namespace, output: Output) -> ExitCode:
    from ..testing import FakeGateway

    given = {name: getattr(args, name) for name in ("host", "tokens", "time_scale", "task_seconds", "seed")
             if not isinstance(getattr(args, name), _FakeDefault)}
    try:
        gateway = FakeGateway(**given, port=args.port)
        if args.fault_rate:
            gateway.set_fault_rates(dict(args.fault_rate), **{k: v for k, v in given.items() if k == "seed"})
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
