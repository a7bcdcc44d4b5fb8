"""The whole `kling-i2v` parser: the common options, then each command module's own.

A new command is a module with `register(commands, common)`, listed in `COMMANDS`, its
command names in `COMMAND_MODULES`. Both name the modules, which are imported only when
their part of the parser is built: `status` loads neither `create`'s nor `batch`'s.

`parse_args` builds only the named command's part (the spec-driven options of `create`
and `batch` cost more to build than `status` costs to run: issue 12's start-up row); a
command line that part cannot parse is parsed again by the whole parser, so every error
and every `--help` reads as if there were only one."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from types import ModuleType

from .._version import __version__
from ._exit import UsageError, epilog
from ._options import Formatter, Parser, common_options

__all__ = ["COMMANDS", "COMMAND_MODULES", "build_parser", "command_module", "parse_args"]

COMMANDS = ("_create", "_task", "_batch", "_media", "_fake")
"""The command modules of this package, in the order `kling-i2v --help` lists them."""

COMMAND_MODULES: dict[str, str] = {
    "create": "_create", "status": "_task", "wait": "_task", "download": "_task",
    "batch": "_batch", "gallery": "_media", "fake-gateway": "_fake",
}
"""Which module registers each command (tests/cli/test_parser.py checks it against what
the modules register)."""


def command_module(name: str) -> ModuleType:
    """The command module `name` (one of COMMANDS), imported now if it was not yet."""
    return importlib.import_module(f".{name}", __package__)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only` (one of COMMANDS), one with that module's commands alone."""
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
    for name in COMMANDS:
        if only is None or name == only:
            command_module(name).register(commands, common)
    return parser


def parse_args(arguments: Sequence[str]) -> argparse.Namespace:
    """`arguments` parsed; raises UsageError, or SystemExit for --help and --version."""
    named = next((COMMAND_MODULES[a] for a in arguments if a in COMMAND_MODULES), None)
    if named is not None:
        try:
            return build_parser(only=named).parse_args(arguments)
        except UsageError:
            pass  # e.g. an option's value that reads like a command name: ask the whole parser
    return build_parser().parse_args(arguments)
