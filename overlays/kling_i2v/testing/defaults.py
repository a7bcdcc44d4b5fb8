"""FakeGateway's defaults, in a module light enough for `kling-i2v --help` to read."""

from __future__ import annotations

__all__ = ["DIALECT", "HOST", "PORT", "SEED", "TASK_SECONDS", "TIME_SCALE", "TOKENS"]

HOST = "127.0.0.1"
PORT = 0
"""Any free port; the command line's default is 8000, so printed export lines stay valid."""
TOKENS = ("sk-fake",)
TIME_SCALE = 1.0
TASK_SECONDS = 10.0
SEED = 0
DIALECT = "anyfast"
