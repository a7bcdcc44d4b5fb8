"""`kling-i2v fake-gateway`: the offline fake gateway (kling_i2v.testing) until Ctrl-C.

Flags and behaviour are `kling_i2v.testing._cli`'s, the same code as
`python -m kling_i2v.testing`; only the output goes through this command line's Output.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._exit import ExitCode
from ._options import Parser, add_command
from ._output import Output

__all__ = ["register"]


def register(commands: Any, common: Parser) -> None:
    from ..testing._cli import add_arguments  # light: the server loads only when run

    # not the common options: --base-url and --token name a gateway to talk to, and this
    # command is the gateway (its --token is the one it accepts, as in python -m
    # kling_i2v.testing); its help lists only the exit codes it can end with
    fake = add_command(commands, None, "fake-gateway", _fake_gateway,
                       "run the offline fake gateway, for experiments",
                       "Run the fake anyfast.ai gateway (kling_i2v.testing) on loopback until Ctrl-C. "
                       "It prints the ANYFAST_BASE_URL and ANYFAST_API_KEY to use with it. "
                       "The same as python -m kling_i2v.testing.",
                       exit_codes=_EXIT_CODES)
    add_arguments(fake)
    fake.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                      help="print the base URL and token as one JSON document")


_EXIT_CODES = f"""exit codes:
  {ExitCode.OK:>3}  stopped by Ctrl-C or SIGTERM
  {ExitCode.ERROR:>3}  unexpected error (a bug: kling-i2v --debug fake-gateway shows the traceback)
  {ExitCode.INVALID_INPUT:>3}  a bad option, or the port is already in use"""


def _fake_gateway(args: argparse.Namespace, output: Output) -> ExitCode:
    from ..testing._cli import run

    def announce(base_url: str, token: str) -> None:
        output.set_secret(None)  # the fake's token is made up: showing it is the point

        def human(out: Output) -> None:
            out.line(f"export ANYFAST_BASE_URL={base_url}")
            out.line(f"export ANYFAST_API_KEY={token}")
            out.note("fake gateway listening (offline, made-up token); Ctrl-C stops it")

        output.emit({"base_url": base_url, "token": token}, human)

    return ExitCode(run(args, announce, prog="kling-i2v fake-gateway"))
