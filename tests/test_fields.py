"""kling_i2v.fields: the request fields as the CLI and manifests read them from text.

The kinds, choices, ranges and defaults are read from openapi.yaml; the expectations here
are literal examples (the reference page's values), so that a wrong reading of the spec
shows up as a failing example rather than agreeing with itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode, main
from kling_i2v.fields import IMAGE_FIELDS, Field, request_fields
from kling_i2v.testing import FakeGateway, sample_image_path
from kling_i2v.validation import request_schema


def test_every_request_field_in_spec_order_with_its_kind() -> None:
    fields = request_fields()
    assert list(fields) == list(request_schema()["properties"])
    kinds = {name: field.kind for name, field in fields.items()}
    assert {name for name, kind in kinds.items() if kind == "image"} == set(IMAGE_FIELDS)
    assert {name: kinds[name] for name in ("image", "image_tail", "static_mask", "prompt", "mode",
                                           "duration", "cfg_scale", "multi_shot", "camera_control",
                                           "dynamic_masks", "callback_url")} == {
        "image": "image", "image_tail": "image", "static_mask": "image", "prompt": "text",
        "mode": "choice", "duration": "choice", "cfg_scale": "number", "multi_shot": "boolean",
        "camera_control": "json", "dynamic_masks": "json", "callback_url": "text",
    }


def test_choices_ranges_and_defaults_are_the_spec_values() -> None:
    fields = request_fields()
    assert fields["mode"].choices == ("std", "pro") and fields["mode"].default == "std"
    assert fields["duration"].choices[:3] == ("3", "4", "5") and fields["duration"].default == "5"
    assert "10" in fields["duration"].choices and fields["duration"].choices[-1] == "15"
    assert (fields["cfg_scale"].minimum, fields["cfg_scale"].maximum, fields["cfg_scale"].default) == (0, 1, 0.5)
    assert fields["sound"].choices == ("on", "off")
    # model_name's default is the one the client fills in; the others are the gateway's
    assert fields["model_name"].default == "kling-v2-master" and fields["model_name"].client_default
    assert not fields["mode"].client_default
    assert fields["cfg_scale"].option == "--cfg-scale"


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("prompt", " the cat jumps ", " the cat jumps "),
        ("mode", "pro", "pro"),
        ("cfg_scale", "0.25", 0.25),
        ("cfg_scale", "1", 1),
        ("cfg_scale", "1.0", 1.0),
        ("cfg_scale", " 0 ", 0),
        ("multi_shot", "yes", True),
        ("multi_shot", "OFF", False),
        ("multi_shot", "1", True),
        ("camera_control", '{"type": "simple", "config": {"zoom": 5}}',
         {"type": "simple", "config": {"zoom": 5}}),
        ("dynamic_masks", "[]", []),
    ],
)
def test_text_becomes_the_value_of_the_fields_type(name: str, text: str, value: object) -> None:
    parsed = request_fields()[name].parse(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("cfg_scale", "half", "cfg_scale: expected a number, got 'half'"),
        ("multi_shot", "maybe", "multi_shot: expected true or false, got 'maybe'"),
        ("camera_control", "{type: simple}", "camera_control: not valid JSON"),
    ],
)
def test_text_that_is_no_value_names_the_field_and_the_text(name: str, text: str, words: str) -> None:
    with pytest.raises(ValueError, match="^" + words.replace("(", r"\(")):
        request_fields()[name].parse(text)


def test_an_integer_field_refuses_a_fraction() -> None:
    field = Field(name="element_id", kind="integer")
    assert field.parse("42") == 42
    with pytest.raises(ValueError, match="element_id: expected an integer, got '4.5'"):
        field.parse("4.5")


def test_a_long_json_value_is_clipped_in_the_message() -> None:
    with pytest.raises(ValueError) as caught:
        request_fields()["camera_control"].parse("{" + "x" * 500)
    assert len(str(caught.value)) < 200 and "…" in str(caught.value)


def test_help_reads_as_sentences_for_a_command_line() -> None:
    fields = request_fields()
    image = fields["image"].help()
    assert image.startswith("A file path or an http(s) URL.") and "base64" not in image.lower()
    assert fields["cfg_scale"].help().endswith("From 0 to 1. Gateway default: 0.5.")
    assert "Client default: kling-v2-master." in fields["model_name"].help()
    assert "JSON text, or @FILE" in fields["camera_control"].help()
    assert "Gateway default: false." in fields["multi_shot"].help()


@pytest.mark.fake_gateway(seed=0)
def test_parsed_values_reach_the_gateway_as_json_types(
    fake_gateway: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    image = tmp_path / "cat.png"
    image.write_bytes(sample_image_path().read_bytes())
    code = main(["create", str(image), "--prompt", "p", "--cfg-scale", "1", "--duration", "10",
                 "--camera-control", '{"type": "simple", "config": {"zoom": 5}}',
                 "--base-url", fake_gateway.base_url, "--token", fake_gateway.token])
    assert code == ExitCode.OK, capsys.readouterr().err
    (sent,) = [r.json for r in fake_gateway.requests if r.method == "POST"]
    assert sent["cfg_scale"] == 1 and sent["duration"] == "10"  # a number; the spec's digit string
    assert sent["camera_control"] == {"type": "simple", "config": {"zoom": 5}}
    assert sent["model_name"] == "kling-v2-master"  # the client's default, filled in
