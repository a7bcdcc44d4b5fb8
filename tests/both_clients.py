"""One fixture for both clients: every test that takes `make_client` runs twice, once on
KlingClient and once on AsyncKlingClient driven through the same blocking calls.

Why a parametrised fixture and not a generated sync half (httpcore's way): the two
clients share every decision through `kling_i2v._flows`, and differ only in how they do
I/O; running the same tests on both is what catches the I/O halves drifting apart.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kling_i2v import AsyncKlingClient, KlingClient


class Blocking:
    """An AsyncKlingClient with the blocking calls of a KlingClient (one event loop per
    client, so its connection pool stays usable between calls)."""

    def __init__(self, client: AsyncKlingClient, runner: asyncio.Runner) -> None:
        self.client = client
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self._runner.run(attr(*args, **kwargs))
        return attr

    def __repr__(self) -> str:
        return repr(self.client)

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """`make_client(token, base_url=..., ...)`: a KlingClient, or an AsyncKlingClient
    behind the same blocking calls; closed after the test."""
    closers: list[Callable[[], object]] = []
    runner = asyncio.Runner() if request.param == "async" else None

    def make(*args: Any, **kwargs: Any) -> Any:
        if runner is None:
            client = KlingClient(*args, **kwargs)
            closers.append(client.close)
            return client
        async_client = AsyncKlingClient(*args, **kwargs)
        closers.append(lambda: runner.run(async_client.close()))
        return Blocking(async_client, runner)

    yield make
    for close in closers:
        close()
    if runner is not None:
        runner.close()
