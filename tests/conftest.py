from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.both_clients import make_client  # noqa: F401 - every test module can use it

if TYPE_CHECKING:
    from kling_i2v.testing import FakeGateway

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def load_data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def gw(fake_gateway: FakeGateway) -> FakeGateway:
    """The shipped `fake_gateway` fixture (fast clock) under the suites' short name; a module
    sets its options with `pytestmark = pytest.mark.fake_gateway(tokens=..., seed=...)`."""
    return fake_gateway
