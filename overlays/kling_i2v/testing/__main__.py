"""`python -m kling_i2v.testing`: run the fake gateway until interrupted (see `_cli`)."""

from __future__ import annotations

import argparse
import sys

from ._cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kling_i2v.testing",
        description="Run the fake anyfast.ai gateway (Kling image-to-video) on loopback. "
        "The same as `kling-i2v fake-gateway`.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
