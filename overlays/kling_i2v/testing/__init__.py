"""A fake anyfast.ai gateway for testing code that uses kling-i2v, offline and fast.

It is a real HTTP server on loopback that answers as new-api, the gateway anyfast runs
on, answers (the shapes, codes, statuses and order of checks of gateway-facts.md, each
with its source beside the code; `dialect` picks the version), checks request bodies
against the shipped openapi.yaml, simulates each task's lifecycle on a clock you can speed up or drive
by hand, serves a real MP4 for finished tasks, POSTs status callbacks to loopback
URLs, injects faults (deterministically, from a seed), and records every request.

    from kling_i2v.testing import FakeGateway, Fault

    with FakeGateway(time_scale=100) as gw:           # a 10 s task takes 0.1 s
        gw.inject(Fault.status(429), on="create")
        ...  # point your code at gw.base_url with token gw.token
        assert gw.count(on="create") == 2

Prompt markers set one task's fate: `[fake:fail]`, `[fake:fail=REASON]`,
`[fake:seconds=N]` (see kling_i2v.testing.lifecycle). With pytest, the `fake_gateway`
fixture gives a running gateway on a fast clock. From a shell:
`python -m kling_i2v.testing --port 8000`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .assets import sample_image_path, sample_video_path
    from .callbacks import CallbackAttempt
    from .clients import AsyncSimulatedClock, SimulatedClock
    from .dialect import DIALECTS, Dialect
    from .faults import Fault
    from .lifecycle import FakeTask, Phase
    from .server import FakeGateway, PortInUseError, RecordedRequest

# loaded on first use, so that `kling-i2v --help` (which reads the fake's flags from
# kling_i2v.testing._cli) does not load the server, the spec and jsonschema
_HOMES = {
    "sample_image_path": "assets",
    "sample_video_path": "assets",
    "CallbackAttempt": "callbacks",
    "AsyncSimulatedClock": "clients",
    "SimulatedClock": "clients",
    "DIALECTS": "dialect",
    "Dialect": "dialect",
    "Fault": "faults",
    "FakeTask": "lifecycle",
    "Phase": "lifecycle",
    "FakeGateway": "server",
    "PortInUseError": "server",
    "RecordedRequest": "server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "DIALECTS",
    "AsyncSimulatedClock",
    "CallbackAttempt",
    "Dialect",
    "FakeGateway",
    "FakeTask",
    "Fault",
    "Phase",
    "PortInUseError",
    "RecordedRequest",
    "SimulatedClock",
    "sample_image_path",
    "sample_video_path",
]
