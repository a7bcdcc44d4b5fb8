"""Client-side validation, read from the openapi.yaml shipped in the package.

Every constraint of the request schema (enums, ranges, lengths, item counts and the
cross-field rules in its `allOf`) is checked by `jsonschema` against the spec itself,
so a spec change needs no change here. Errors name the field path, the rule and the
(shortened) value, and list every violation at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from .errors import MISSING, RequestValidationError, Violation

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

__all__ = ["enum_values", "load_spec", "request_schema", "validate_request", "violations"]

REQUEST_SCHEMA = "ImageToVideoRequest"


@functools.cache
def load_spec() -> dict[str, Any]:
    """The OpenAPI document shipped inside the package, parsed once."""
    import yaml

    text = (files("kling_i2v") / "openapi.yaml").read_text(encoding="utf-8")
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


def schema(name: str) -> dict[str, Any]:
    """A component schema of the spec, by name."""
    found: dict[str, Any] = load_spec()["components"]["schemas"][name]
    return found


def request_schema() -> dict[str, Any]:
    return schema(REQUEST_SCHEMA)


def enum_values(name: str) -> list[str]:
    """The allowed values of an enum component (`Mode`, `Duration`, ...), in spec order."""
    return [str(v) for v in schema(name)["enum"]]


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    root = {"$ref": f"#/components/schemas/{name}", "components": load_spec()["components"]}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


def violations(body: Mapping[str, Any], name: str = REQUEST_SCHEMA) -> list[Violation]:
    """Every way `body` breaks the schema `name`, as readable violations."""
    found: list[Violation] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(_validator(name).iter_errors(body), key=_order):
        for violation in _explain(error, name):
            key = (violation.path, violation.rule)
            if key not in seen:
                seen.add(key)
                found.append(violation)
    return found


def validate_request(body: Mapping[str, Any], name: str = REQUEST_SCHEMA) -> None:
    """Raise RequestValidationError listing every violation, or return None."""
    found = violations(body, name)
    if found:
        raise RequestValidationError(found)


# --------------------------------------------------------------------- messages


def _order(error: ValidationError) -> tuple[str, ...]:
    return tuple(str(p) for p in error.absolute_path)


def format_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(request)"


def _rule_of(error: ValidationError, name: str) -> str | None:
    """The `x-rule` sentence of the spec node the failing keyword sits under, if any."""
    components = load_spec()["components"]["schemas"]
    node: Any = components[name]
    rule: str | None = None
    # jsonschema leaves $ref hops out of the path: resolve a $ref whenever the next key is missing.
    for part in error.absolute_schema_path:
        while isinstance(node, dict) and part not in node and "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[1]]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "x-rule" in node:
            rule = node["x-rule"]
    return rule


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _keyword_rule(error: ValidationError) -> str:
    keyword = error.validator
    expected: Any = error.validator_value
    if keyword == "enum":
        return "must be one of " + ", ".join(str(v) for v in expected)
    if keyword == "const":
        return f"must be {expected!r}"
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "must be " + " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds)
    if keyword == "minimum":
        return f"must be >= {expected:g}"
    if keyword == "maximum":
        return f"must be <= {expected:g}"
    if keyword == "exclusiveMinimum":
        return f"must be > {expected:g}"
    if keyword == "exclusiveMaximum":
        return f"must be < {expected:g}"
    if keyword == "maxLength":
        return f"must be at most {expected} characters"
    if keyword == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if keyword == "maxItems":
        return f"must have at most {expected} items"
    if keyword == "minItems":
        return f"must have at least {expected} item{'s' if expected != 1 else ''}"
    if keyword == "pattern":
        return f"must match {expected}"
    if keyword == "format":
        return f"must be a valid {expected}"
    return error.message


def _explain(error: ValidationError, name: str) -> Iterator[Violation]:
    where = list(error.absolute_path)
    rule = _rule_of(error, name)
    expected: Any = error.validator_value
    schema: Any = error.schema
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        for missing in expected:
            if missing not in instance:
                yield Violation(format_path([*where, missing]), rule or "is required", MISSING)
        return
    if error.validator == "additionalProperties":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        allowed = set(schema.get("properties", {}))
        for extra in sorted(set(instance) - allowed):
            yield Violation(format_path([*where, extra]), "is not a field of this object", instance[extra])
        return
    if error.validator == "not" and rule:
        # a rule about several fields: name the ones present
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        involved = [k for k in _names_in(expected) if k in instance]
        path = format_path([*where, " + ".join(involved)]) if involved else format_path(where)
        yield Violation(path, rule, {k: instance[k] for k in involved})
        return
    yield Violation(format_path(where), rule or _keyword_rule(error), error.instance)


def _names_in(node: Any) -> list[str]:
    """Property names a `required` anywhere below `node` mentions, in order, once."""
    names: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "required" and isinstance(value, list):
                names += [v for v in value if v not in names]
            else:
                names += [v for v in _names_in(value) if v not in names]
    elif isinstance(node, list):
        for item in node:
            names += [v for v in _names_in(item) if v not in names]
    return names
