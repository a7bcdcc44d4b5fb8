"""kling_i2v.validation: the create request checked against openapi.yaml before sending.

Literal examples of what a user reads, so a spec change that breaks a rule or its wording
fails here."""

from __future__ import annotations

from typing import Any

import pytest

from kling_i2v.errors import RequestValidationError
from kling_i2v.requests import build_request_body
from kling_i2v.validation import validate_request, violations

URL = "https://example.com/cat.png"


def problems(body: dict[str, Any], **options: Any) -> list[str]:
    return [str(v) for v in violations(body, **options)]


def test_a_listed_model_passes() -> None:
    for model in ("kling-v2-master", "kling-v2-6", "kling-v3", "kling-v1"):
        validate_request({"image": URL, "prompt": "p", "model_name": model})


def test_an_unlisted_model_is_an_error_that_says_how_to_send_it_anyway() -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_request({"image": URL, "prompt": "p", "model_name": "kling-v9"})
    [violation] = info.value.violations
    assert violation.path == "model_name"
    assert violation.rule.startswith("must be one of kling-v2-master, kling-v1, kling-v1-5,")
    assert "pass allow_unknown_model=True (CLI: --allow-unknown-model)" in violation.rule
    assert violation.value == "kling-v9"


def test_allow_unknown_model_lets_the_model_through_and_checks_everything_else() -> None:
    validate_request({"image": URL, "prompt": "p", "model_name": "kling-v9"}, allow_unknown_model=True)
    found = problems({"image": URL, "prompt": "p", "model_name": "kling-v9", "duration": "99"},
                     allow_unknown_model=True)
    assert len(found) == 1 and found[0].startswith("duration: must be one of 3, 4, 5,")


@pytest.mark.parametrize("model", ["", 5, None])
def test_allow_unknown_model_still_wants_a_non_empty_string(model: Any) -> None:
    found = problems({"image": URL, "prompt": "p", "model_name": model}, allow_unknown_model=True)
    assert found and {p.split(":", 1)[0] for p in found} == {"model_name"}


def test_the_client_fills_in_the_default_model() -> None:
    # new-api answers 400 "Model name not specified" without it (gateway-facts.md "Create")
    body = build_request_body(None, {"image": URL, "prompt": "p"})
    assert body["model_name"] == "kling-v2-master"
    body = build_request_body({"model_name": "kling-v3"}, {"image": URL, "prompt": "p"})
    assert body["model_name"] == "kling-v3"
    body = build_request_body(None, {"image": URL, "prompt": "p", "model_name": None})
    assert body["model_name"] == "kling-v2-master"


def test_a_generated_request_without_a_model_gets_the_default() -> None:
    from kling_i2v_api.models import ImageToVideoRequest

    body = build_request_body(ImageToVideoRequest(image=URL, prompt="p"), {})
    assert body["model_name"] == "kling-v2-master"


def test_build_request_body_passes_allow_unknown_model_on() -> None:
    with pytest.raises(RequestValidationError, match="model_name: must be one of"):
        build_request_body(None, {"image": URL, "prompt": "p", "model_name": "kling-v9"})
    body = build_request_body(None, {"image": URL, "prompt": "p", "model_name": "kling-v9"},
                              allow_unknown_model=True)
    assert body["model_name"] == "kling-v9"
