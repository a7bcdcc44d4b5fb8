"""pytest plugin (entry point `pytest11: kling_i2v`): the `fake_gateway` fixture.

    def test_my_code(fake_gateway):
        run_my_code(base_url=fake_gateway.base_url, token=fake_gateway.token)
        assert fake_gateway.count(on="create") == 1

The gateway runs on a fast clock (time_scale=100: a task finishes in 0.1 s). Other
FakeGateway options come from a marker:

    @pytest.mark.fake_gateway(clock="manual", tokens=("sk-mine",))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import FakeGateway

FAST = 100.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_gateway(**options): FakeGateway keyword arguments for the fake_gateway fixture",
    )


@pytest.fixture
def fake_gateway(request: pytest.FixtureRequest) -> Iterator[FakeGateway]:
    """A running fake anyfast gateway on loopback, stopped after the test."""
    from .server import FakeGateway  # here: pytest loads this plugin at start-up

    marker = request.node.get_closest_marker("fake_gateway")
    options: dict[str, Any] = {"time_scale": FAST, **(marker.kwargs if marker else {})}
    with FakeGateway(**options) as gateway:
        yield gateway
