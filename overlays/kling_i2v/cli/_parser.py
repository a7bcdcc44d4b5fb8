"""The whole `kling-i2v` parser: the common options, then each command module's own.

A new command is a module with `register(commands, common)`, listed in `COMMANDS`."""

from __future__ import annotations

import argparse

from .._version import __version__
from . import _batch, _create, _fake, _media, _task
from ._exit import epilog
from ._options import Formatter, Parser, common_options

__all__ = ["COMMANDS", "build_parser"]

COMMANDS = (_create, _task, _batch, _media, _fake)
"""In the order `kling-i2v --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(
        prog="kling-i2v",
        description="Kling image-to-video through the anyfast.ai gateway.",
        epilog=epilog(),
        formatter_class=Formatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"kling-i2v {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands, common)
    return parser
