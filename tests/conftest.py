from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.both_clients import make_client  # noqa: F401 - every test module can use it

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def load_data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
