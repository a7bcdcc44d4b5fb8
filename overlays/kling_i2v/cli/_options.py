"""The parser's building blocks: the options every command takes, the request options read
from openapi.yaml (see kling_i2v.fields), and the types of the other options.

A command module adds itself with `add_command(...)` and its own options; nothing here
knows which commands exist (that is `_parser.build_parser`).
"""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .._inputs import MAX_JSON_DEPTH, MAX_OPTION_FILE_BYTES, check_depth, read_text
from ._exit import ExitCode, UsageError, epilog

if TYPE_CHECKING:
    from ..fields import Field
    from ._output import Output

__all__ = [
    "Handler", "Parser", "add_allow_unknown_model", "add_command", "add_request_options", "add_save_options",
    "add_wait_options", "common_options", "count", "destination", "help_text", "paragraphs",
    "seconds",
]

Handler = Callable[[argparse.Namespace, "Output"], ExitCode]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def common_options() -> Parser:
    """Options every command takes, before or after its name."""
    from ..client import DEFAULT_BASE_URL

    common = Parser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--base-url", default=argparse.SUPPRESS, metavar="URL",
                       help=f"the gateway (default: $ANYFAST_BASE_URL, else {DEFAULT_BASE_URL})")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help="API token (default: $ANYFAST_API_KEY, which is safer: a command "
                            "line can be seen by other users)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON document on stdout instead of text")
    group.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="log HTTP requests and retries, show tracebacks (never the token)")
    return common


def add_command(commands: Any, common: Parser | None, name: str, handler: Handler, summary: str,
                description: str = "", *, exit_codes: str | None = None) -> Parser:
    """A subcommand with the common options (unless `common` is None: a command that talks
    to no gateway); `args.handler` runs it, `args.command` names it. `exit_codes` replaces
    the list of every command's exit codes in its help."""
    sub: Parser = commands.add_parser(
        name, help=summary, description=paragraphs(description or summary),
        epilog=exit_codes or epilog(), formatter_class=Formatter,
        parents=[common] if common is not None else [],
    )
    sub.set_defaults(handler=handler, command=name)
    return sub


def paragraphs(text: str) -> str:
    return "\n\n".join(textwrap.fill(p, 88) for p in text.split("\n\n"))


def help_text(value: str) -> str:
    """Text for argparse's help, which treats % as a format."""
    return value.replace("%", "%%")


# ============================================================================ request options


def _converter(field: Field) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            if field.kind == "json" and text.startswith("@"):
                text = read_text(text[1:], "the file", MAX_OPTION_FILE_BYTES)
            value = field.parse(text)
            check_depth(value)
            return value
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None
        except RecursionError:
            raise argparse.ArgumentTypeError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") \
                from None
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    convert.__name__ = field.kind
    return convert


_METAVARS = {"image": "PATH|URL", "number": "NUMBER", "integer": "INT", "json": "JSON", "text": "TEXT"}


def add_request_options(parser: argparse.ArgumentParser, skip: Sequence[str], title: str) -> None:
    """One option per request field of the spec, with its choices, range, default and help."""
    from ..fields import request_fields  # the spec's tables: only `create` and `batch` need them

    group = parser.add_argument_group(title)
    for field in request_fields().values():
        if field.name in skip:
            continue
        text = field.help()
        options: dict[str, Any] = {"dest": field.name, "default": None}
        if field.kind == "boolean":
            options["action"] = argparse.BooleanOptionalAction
        elif field.kind == "choice":
            # the spec's validator refuses other values, with the same words as for a
            # manifest; argparse's `choices` would also refuse a model_name that
            # --allow-unknown-model lets through
            if len(field.choices) > 4:
                options["metavar"] = field.name.upper()
                text += f" One of: {', '.join(field.choices)}."
            else:
                options["metavar"] = "{" + ",".join(field.choices) + "}"
        else:
            options["type"] = _converter(field)
            options["metavar"] = _METAVARS.get(field.kind, "VALUE")
        group.add_argument(field.option, help=help_text(text), **options)


def add_allow_unknown_model(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--allow-unknown-model", action="store_true",
                        help="send a --model-name the spec does not list (with a warning) "
                             "instead of refusing it; every other rule is still checked, and "
                             "the gateway decides whether it serves the model")


# ============================================================================ waiting, saving


def add_wait_options(sub: argparse.ArgumentParser) -> None:
    """--timeout and --poll-interval, with the client's own defaults."""
    from ..client import DEFAULT_WAIT_TIMEOUT
    from ..polling import PollPolicy

    interval = PollPolicy().max_interval
    sub.add_argument("--timeout", type=seconds, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
                     help=f"give up waiting after this long (default: {DEFAULT_WAIT_TIMEOUT:g}); "
                          "the task keeps running")
    sub.add_argument("--poll-interval", type=seconds, default=interval, metavar="SECONDS",
                     help=f"longest pause between two status checks (default: {interval:g})")


def add_save_options(sub: argparse.ArgumentParser, text: str) -> None:
    sub.add_argument("--out", type=destination, metavar="FILE", help=text)
    sub.add_argument("--overwrite", action="store_true", help="replace an existing file")


# ============================================================================ types


def destination(text: str) -> Path:
    """--out: a file, or a folder when it exists or is written with a trailing slash."""
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)):
        path.mkdir(parents=True, exist_ok=True)  # download() takes an existing folder as one
    return path


def seconds(text: str) -> float:
    return _number(text, float, "seconds", lambda value: value > 0, "must be more than 0")


def count(text: str) -> int:
    return _number(text, int, "a whole number", lambda value: value >= 1, "must be at least 1")


_N = TypeVar("_N", int, float)


def _number(text: str, kind: Callable[[str], _N], expected: str, allowed: Callable[[_N], bool],
            rule: str) -> _N:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return value
