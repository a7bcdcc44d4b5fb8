"""help() on create() lists every field of the spec's request, for both clients.

Covers: _fields_help.py
"""

from __future__ import annotations

import inspect
import re

import pytest
from kling_i2v import AsyncKlingClient, KlingClient
from kling_i2v.validation import request_schema


@pytest.mark.parametrize(("create", "first_words"), [(KlingClient.create, "Create a task"),
                                                     (AsyncKlingClient.create, "See KlingClient")])
def test_create_documents_every_field_of_the_spec(create: object, first_words: str) -> None:
    doc = inspect.getdoc(create) or ""
    own, _, fields = doc.partition("\n\nFields (keyword arguments; from openapi.yaml):\n\n")
    assert own.startswith(first_words)  # the method's own docstring comes first
    listed = re.findall(r"^    (\w+): ", fields, re.MULTILINE)
    assert listed == list(request_schema()["properties"])
    # literal examples beside the spec's list: a field, its type and its words
    assert "    prompt: str\n        Positive text prompt." in fields
    assert "    image: ImageLike\n" in fields
    assert "    model_name: ModelName | str\n" in fields
