"""openapi.yaml is valid OpenAPI 3.1 and says everything the reference page says."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from tests.conftest import REPO, load_data


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((REPO / "openapi.yaml").read_text())


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = spec["components"]["schemas"][name]
    return node


def request_schema_validator(spec: dict[str, Any]) -> jsonschema.Draft202012Validator:
    schema = {"$ref": "#/components/schemas/ImageToVideoRequest", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_spec_is_valid_openapi_3_1() -> None:
    spec_dict, base_uri = read_from_filename(str(REPO / "openapi.yaml"))
    assert spec_dict["openapi"].startswith("3.1")
    validate(spec_dict, base_uri=base_uri)  # raises on any violation


def test_every_reference_field_is_in_the_request_schema(spec: dict[str, Any]) -> None:
    reference = load_data("reference_request.json")
    props = spec["components"]["schemas"]["ImageToVideoRequest"]["properties"]
    assert sorted(props) == sorted(reference)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("model_name", {"enum": ["kling-v2-master", "kling-v1", "kling-v1-5", "kling-v1-6", "kling-v2-1",
                                 "kling-v2-1-master", "kling-v2-5-turbo", "kling-v2-6", "kling-v3"]}),
        ("mode", {"enum": ["std", "pro"], "default": "std"}),
        ("duration", {"enum": [str(n) for n in range(3, 16)], "default": "5"}),
        ("cfg_scale", {"minimum": 0, "maximum": 1, "default": 0.5}),
        ("multi_shot", {"type": "boolean", "default": False}),
        ("shot_type", {"enum": ["customize", "intelligence"]}),
        ("sound", {"enum": ["on", "off"], "default": "off"}),
        ("prompt", {"maxLength": 2500}),
        ("negative_prompt", {"maxLength": 2500}),
        ("multi_prompt", {"minItems": 1, "maxItems": 6}),
        ("element_list", {"maxItems": 3}),
        ("dynamic_masks", {"maxItems": 6}),
    ],
)
def test_reference_page_constraints(spec: dict[str, Any], field: str, expected: dict[str, Any]) -> None:
    node = resolve(spec, spec["components"]["schemas"]["ImageToVideoRequest"]["properties"][field])
    for key, value in expected.items():
        assert node.get(key) == value, f"{field}.{key}"


def test_every_operation_has_bearer_security(spec: dict[str, Any]) -> None:
    ops = [op for path in spec["paths"].values() for op in path.values()]
    assert len(ops) == 2
    for op in ops:
        assert op["security"] == [{"bearerAuth": []}]
        assert {"400", "401", "403", "404", "429", "500", "502", "503"} <= set(op["responses"])


MINIMAL: dict[str, Any] = {"image": "https://example.com/cat.png", "prompt": "a cat"}


@pytest.mark.parametrize(
    ("body", "rule_fragment"),
    [
        ({"prompt": "no image"}, "image or image_tail"),
        ({"image": "https://e.com/a.png"}, "prompt is required"),
        ({**MINIMAL, "multi_shot": True}, "shot_type is required"),
        ({**MINIMAL, "multi_shot": True, "shot_type": "customize"}, "multi_prompt is required"),
        ({**MINIMAL, "image_tail": "https://e.com/b.png", "static_mask": "https://e.com/m.png"}, "cannot be combined"),
        ({**MINIMAL, "camera_control": {"type": "simple", "config": {"zoom": 5}}, "dynamic_masks": [
            {"mask": "m", "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}]}, "cannot be combined"),
        ({**MINIMAL, "camera_control": {"type": "simple"}}, "config is required when type is simple"),
        ({**MINIMAL, "camera_control": {"type": "down_back", "config": {"zoom": 1}}}, "only allowed then"),
        ({**MINIMAL, "camera_control": {"type": "simple", "config": {"zoom": 1, "pan": 2}}}, "exactly one"),
        ({**MINIMAL, "camera_control": {"type": "simple", "config": {"zoom": 0}}}, "exactly one"),
    ],
)
def test_cross_field_rules_reject(spec: dict[str, Any], body: dict[str, Any], rule_fragment: str) -> None:
    errors = list(request_schema_validator(spec).iter_errors(body))
    assert errors, "the spec accepted a body that breaks a rule"
    rules = [_rule_of(spec, e) for e in errors]
    assert any(rule_fragment in r for r in rules if r), rules


def _rule_of(spec: dict[str, Any], error: jsonschema.ValidationError) -> str | None:
    # the x-rule of the allOf item the failing keyword sits under
    # (jsonschema leaves the $ref hops out of the path)
    node: Any = spec["components"]["schemas"]["ImageToVideoRequest"]
    rule = None
    for part in error.absolute_schema_path:
        if isinstance(node, dict) and part not in node:
            node = resolve(spec, node)
        node = node[part]
        if isinstance(node, dict) and "x-rule" in node:
            rule = node["x-rule"]
    return rule


@pytest.mark.parametrize(
    "body",
    [
        MINIMAL,
        {"image_tail": "https://e.com/b.png", "prompt": "ends on this"},
        {"image": "https://e.com/a.png", "multi_shot": True, "shot_type": "intelligence"},
        {**MINIMAL, "multi_shot": True, "shot_type": "customize",
         "multi_prompt": [{"index": 1, "prompt": "a", "duration": "2"}, {"index": 2, "prompt": "b", "duration": "3"}]},
        {**MINIMAL, "camera_control": {"type": "simple", "config": {"zoom": -10, "pan": 0}}},
        {**MINIMAL, "camera_control": {"type": "forward_up"}},
        {**MINIMAL, "static_mask": "https://e.com/m.png", "dynamic_masks": [
            {"mask": "m", "trajectories": [{"x": 0, "y": 0}] * 77}]},
    ],
)
def test_valid_bodies_pass(spec: dict[str, Any], body: dict[str, Any]) -> None:
    assert list(request_schema_validator(spec).iter_errors(body)) == []


@pytest.mark.parametrize(
    "name", ["query_success.json", "query_failure.json", "query_in_progress.json"]
)
def test_gateway_facts_query_samples_conform(spec: dict[str, Any], name: str) -> None:
    schema = {"$ref": "#/components/schemas/TaskQueryResponse", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(load_data(name))
