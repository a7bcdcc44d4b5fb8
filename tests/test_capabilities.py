"""Per-model capability warnings and the fields new-api drops, read from openapi.yaml.

The examples are literal (model, field, value -> what the user reads), so a wrong table
in the spec fails here instead of being read back by the test."""

from __future__ import annotations

from typing import Any

import pytest

from kling_i2v.capabilities import (
    capability_warnings,
    default_model,
    dropped_fields,
    model_capabilities,
    model_names,
)
from kling_i2v.validation import enum_values

URL = "https://example.com/cat.png"


def warn(**fields: Any) -> list[str]:
    return capability_warnings({"image": URL, "prompt": "p", **fields})


def test_the_reference_pages_model_comes_first_and_is_the_default() -> None:
    assert model_names()[0] == "kling-v2-master"
    assert default_model() == "kling-v2-master"
    assert set(model_names()) == {
        "kling-v1", "kling-v1-5", "kling-v1-6", "kling-v2-master", "kling-v2-1",
        "kling-v2-1-master", "kling-v2-5-turbo", "kling-v2-6", "kling-v3",
    }


def test_every_listed_model_has_a_capability_row_and_no_row_is_unlisted() -> None:
    assert set(model_capabilities()) == set(model_names())


@pytest.mark.parametrize("model", enum_values("ModelName"))
def test_capability_values_have_the_documented_shapes(model: str) -> None:
    durations = set(enum_values("Duration"))
    for capability, value in model_capabilities()[model].items():
        if capability == "durations":
            assert value and set(value) <= durations, (model, value)
        else:
            assert value in (True, False) or set(value) == {"modes"}, (model, capability, value)
            if isinstance(value, dict):
                assert set(value["modes"]) <= set(enum_values("Mode"))


@pytest.mark.parametrize(
    "fields",
    [
        {},  # the default model, default mode and duration
        {"model_name": "kling-v2-6", "mode": "pro", "sound": "on"},
        {"model_name": "kling-v3", "mode": "pro", "sound": "on", "duration": "15"},
        {"model_name": "kling-v3", "multi_shot": True, "element_list": [{"element_id": 1}]},
        {"model_name": "kling-v1-6", "cfg_scale": 0.8},
        {"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "down_back"}},
        {"model_name": "kling-v2-master", "mode": "pro", "image_tail": URL, "duration": "10"},
        {"model_name": "kling-v2-master", "sound": "off", "multi_shot": False, "element_list": []},
        # the spec's default cfg_scale, which a generated ImageToVideoRequest always carries
        {"model_name": "kling-v2-master", "cfg_scale": 0.5},
    ],
)
def test_what_a_model_supports_gives_no_warning(fields: dict[str, Any]) -> None:
    assert warn(**fields) == []


def test_sound_on_a_model_without_it_names_model_field_value_and_where_it_exists() -> None:
    [message] = warn(model_name="kling-v2-master", sound="on")
    assert message.startswith("sound 'on': kling-v2-master does not support sound")
    assert "(supported by: kling-v2-6 in mode pro, kling-v3 in mode pro)" in message
    assert message.endswith("from third-party docs and the gateway decides, so the request is sent anyway")


def test_the_default_model_is_the_one_checked_when_none_is_given() -> None:
    [message] = warn(sound="on")
    assert "kling-v2-master does not support sound" in message


def test_a_mode_bound_feature_in_the_wrong_mode_says_which_mode() -> None:
    # no mode given: the spec's default, std
    [message] = warn(model_name="kling-v2-6", sound="on")
    assert message.startswith("sound 'on': kling-v2-6 supports sound only in mode pro, and mode is std")
    [message] = warn(model_name="kling-v1-5", mode="std", camera_control={"type": "down_back"})
    assert "camera_control: kling-v1-5 supports camera_control only in mode pro" in message


def test_a_duration_outside_the_models_list_names_the_list_and_the_models_that_have_it() -> None:
    [message] = warn(model_name="kling-v2-master", duration="15")
    assert message.startswith("duration 15 is not one of the durations of kling-v2-master (5, 10)")
    assert "(supported by: kling-v3);" in message


@pytest.mark.parametrize(
    ("fields", "start"),
    [
        ({"model_name": "kling-v2-master", "multi_shot": True, "shot_type": "intelligence"},
         "multi_shot: kling-v2-master does not support multi_shot"),
        ({"model_name": "kling-v2-6", "element_list": [{"element_id": 7}]},
         "element_list: kling-v2-6 does not support element_list"),
        ({"model_name": "kling-v2-1", "cfg_scale": 0.9},
         "cfg_scale 0.9: kling-v2-1 does not support cfg_scale"),
        ({"model_name": "kling-v2-master", "camera_control": {"type": "forward_up"}},
         "camera_control: kling-v2-master does not support camera_control"),
        ({"model_name": "kling-v1", "image_tail": URL},
         "image_tail: kling-v1 supports image_tail only in mode pro, and mode is std"),
    ],
)
def test_each_capability_warns_in_plain_words(fields: dict[str, Any], start: str) -> None:
    [message] = warn(**fields)
    assert message.startswith(start)


def test_every_mismatch_is_reported_at_once() -> None:
    found = warn(model_name="kling-v2-master", duration="3", sound="on", multi_shot=True,
                 shot_type="intelligence")
    assert [m.split(" ", 1)[0] for m in found] == ["duration", "sound", "multi_shot:"]


def test_generated_enum_members_are_read_like_their_values() -> None:
    from kling_i2v_api.models import Duration, Mode, ModelName, Sound

    assert warn(model_name=ModelName.KLING_V2_6, mode=Mode.PRO, sound=Sound.ON) == []
    [message] = warn(model_name=ModelName.KLING_V2_MASTER, duration=Duration.SECONDS_15)
    assert message.startswith("duration 15 is not one of the durations of kling-v2-master")


def test_an_unlisted_model_is_a_warning_that_names_it() -> None:
    [message] = warn(model_name="kling-v9", sound="on")
    assert message.startswith("model_name 'kling-v9' is not one of the models the spec lists")
    assert "kling-v2-master" in message and "what it supports is unknown" in message


def test_the_fields_new_api_drops_are_marked_in_the_spec() -> None:
    # relay/channel/task/kling/adaptor.go requestPayload (gateway-facts.md "Create")
    assert dropped_fields() == (
        "multi_shot", "shot_type", "multi_prompt", "element_list", "sound", "watermark_info",
    )
