"""The `kling-i2v` command line: create, status, wait, download, batch, fake-gateway.

    kling-i2v create cat.png --prompt "the cat jumps" --wait --out cat.mp4
    kling-i2v batch shots.csv --out videos/ --concurrency 8

`main(argv)` runs one command and returns its exit code (see `ExitCode`); the console
script and `python -m kling_i2v.cli` call it. Options, their choices and their help come
from openapi.yaml (see kling_i2v.fields).

The package is laid out by job: `_parser` (the whole parser, from `_options`' building
blocks), one module per command or group (`_create`, `_task`, `_batch`, `_fake`),
`_exit` (exit codes and the wording of errors), `_output` (what is printed), `_main`.
"""

from ._exit import ExitCode
from ._main import main

__all__ = ["ExitCode", "main"]
