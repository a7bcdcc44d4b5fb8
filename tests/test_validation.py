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
    assert violation.value == "kling-v9"
    # the library's words, with the value; the command line says its option (tests/cli)
    assert str(violation).endswith(
        '(got "kling-v9"); to send it anyway, pass allow_unknown_model=True'), str(violation)
    assert "--allow-unknown-model" not in str(info.value)
    assert violation.next_step(cli=True) == "to send it anyway, pass --allow-unknown-model"


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


# --------------------------------------------------------------------- plain words


def _nodes(node: Any, seen: set[str]) -> Any:
    """Every schema node reachable from `node`, following $refs once."""
    from kling_i2v.validation import schema

    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            yield from _nodes(schema(ref.rsplit("/", 1)[1]), seen)
        yield node
        for value in node.values():
            yield from _nodes(value, seen)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item, seen)


def test_every_pattern_in_the_request_has_a_rule_in_words() -> None:
    from kling_i2v.validation import request_schema

    patterned = [n for n in _nodes(request_schema(), set()) if "pattern" in n]
    assert patterned, "the walk found no pattern: it walks the wrong tree"
    for node in patterned:
        assert "x-rule" in node, f"pattern {node['pattern']} has no x-rule sentence"


@pytest.mark.parametrize("duration", ["16", "0", "5\n", "five", "05"])
def test_a_shot_duration_is_explained_in_words_not_a_regular_expression(duration: str) -> None:
    body = {"image": URL, "multi_shot": True, "shot_type": "customize",
            "multi_prompt": [{"index": 1, "prompt": "a", "duration": duration}]}
    [message] = problems(body)
    assert message.startswith(
        "multi_prompt[0].duration: must be a whole number of seconds from 1 to 15, "
        'written as a string ("1" to "15")'
    )
    assert "^" not in message and "[1-9]" not in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"duration": "99"}, "duration: must be one of 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 (got \"99\")"),
        ({"callback_url": "not a url"},
         "callback_url: must be an absolute URL, such as https://example.com/callback (got \"not a url\")"),
        ({"element_list": [{"element_id": 2**63}]},
         f"element_list[0].element_id: must be a whole number that fits in 64 bits (got {2**63})"),
        ({"prompt": "x" * 2501}, "prompt: must be at most 2500 characters"),
        ({"mode": "fast"}, "mode: must be one of std, pro (got \"fast\")"),
    ],
)
def test_messages_name_the_field_the_rule_and_the_value(fields: dict[str, Any], expected: str) -> None:
    found = problems({"image": URL, "prompt": "p", **fields})
    assert len(found) == 1 and found[0].startswith(expected), found


# new-api refuses an empty or blank prompt with 400 invalid_request "prompt is required"
# (relay/common/relay_utils.go validatePrompt, strings.TrimSpace): refused here, unsent
@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("", 'prompt: must not be empty (got "")'),
        ("   ", 'prompt: must contain some text, not only spaces (got "   ")'),
        ("\t\n", "prompt: must contain some text, not only spaces"),
        ("\u3000\u00a0", "prompt: must contain some text, not only spaces"),  # Go's IsSpace
    ],
)
def test_an_empty_or_blank_prompt_is_refused_before_sending(prompt: str, expected: str) -> None:
    found = problems({"image": URL, "prompt": prompt})
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize("prompt", ["a", "  a cat  ", "\ufeff"])  # U+FEFF is no space to Go
def test_a_prompt_with_any_text_passes(prompt: str) -> None:
    assert problems({"image": URL, "prompt": prompt}) == []


def test_a_rule_that_names_its_field_is_not_prefixed_with_it_again() -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_request({"image": URL})
    assert str(info.value) == ("invalid request, 1 problem:\n"
                               "  - prompt is required unless multi_shot is true (missing)")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"durration": 5}, "durration: is not a field of this object (got 5); did you mean 'duration'?"),
        ({"negative_promt": "x"},
         "negative_promt: is not a field of this object (got \"x\"); did you mean 'negative_prompt'?"),
        ({"zzzz": 1}, "zzzz: is not a field of this object (got 1)"),  # nothing close: no guess
    ],
)
def test_a_misspelt_field_gets_a_did_you_mean(fields: dict[str, Any], expected: str) -> None:
    assert problems({"image": URL, "prompt": "p", **fields}) == [expected]
