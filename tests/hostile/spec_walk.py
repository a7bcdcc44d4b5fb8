"""Every constraint of the request schema in openapi.yaml, found by walking it, and valid
requests drawn from the spec by schemathesis.

Nothing here names a field, an enum or a range: a constraint added to the spec shows up
in `constraints()` by itself, and `unknown_keywords()` fails the suite if the spec starts
using a JSON Schema keyword this walker does not know how to break.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import attrs
from kling_i2v.validation import REQUEST_SCHEMA, load_spec

Location = tuple[str, ...]
"""A place in a request body: property names, and "[]" for "any item of this list"."""

ITEM = "[]"

# Keywords that constrain a value, each of which the suite knows how to break.
VALUE_KEYWORDS = (
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "pattern", "format",
    "not",  # of a pattern: the blank prompt (openapi.yaml, new-api's validatePrompt)
)
# Keywords that only describe, or that the walker follows.
ANNOTATIONS = frozenset({
    "description", "default", "examples", "title", "x-enum-varnames", "$ref", "properties",
    "items", "allOf", "required", "additionalProperties", "deprecated", "readOnly",
    "writeOnly", "nullable",
    # capability warnings and the new-api marker: advice shown to users, never a refusal
    # (tests/test_capabilities.py covers them)
    "x-model-capabilities", "x-dropped-by-new-api", "x-image",
    # beside a field's own keywords, x-rule only words their failure (an allOf entry's
    # x-rule is a constraint of its own, and is walked as one)
    "x-rule",
})


@attrs.frozen
class Constraint:
    location: Location
    keyword: str
    """A JSON Schema keyword, "required", "additionalProperties" or "x-rule"."""
    value: Any = attrs.field(eq=False)
    """The keyword's value; the required property's name; the x-rule's subschema."""
    schema: Any = attrs.field(eq=False, repr=False)
    """The (resolved) schema of the value at `location`."""
    rule: str | None = None
    """The x-rule sentence."""
    name: str = ""
    """The required property, for `required`."""

    @property
    def id(self) -> str:
        where = ".".join(self.location).replace(".[]", "[]") or "(request)"
        what = self.keyword
        if self.keyword == "required":
            what = f"required:{self.name}"
        elif self.keyword == "x-rule":
            what = f"x-rule:{self.rule}"
        elif self.keyword in ("format", "pattern", "minimum", "maximum", "minLength",
                              "maxLength", "minItems", "maxItems", "type"):
            what = f"{self.keyword}={self.value}"
        return f"{where}:{what}"


def components() -> dict[str, Any]:
    found: dict[str, Any] = load_spec()["components"]["schemas"]
    return found


def resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = components()[node["$ref"].rsplit("/", 1)[1]]
    return node


def request_root() -> dict[str, Any]:
    """A standalone JSON Schema for the request body (its $refs resolve inside it)."""
    return {"$ref": f"#/components/schemas/{REQUEST_SCHEMA}",
            "components": copy.deepcopy(load_spec()["components"])}


def _walk(node: Any, location: Location) -> Iterator[Constraint]:
    node = resolve(node)
    if not isinstance(node, dict):
        return
    for keyword in VALUE_KEYWORDS:
        if keyword in node:
            if keyword == "format" and node.get("type") == "integer" and node[keyword] not in (
                "int32", "int64"
            ):
                continue
            yield Constraint(location, keyword, node[keyword], node)
    for name in node.get("required", ()):
        yield Constraint(location, "required", name, node, name=name)
    if node.get("additionalProperties") is False:
        yield Constraint(location, "additionalProperties", False, node)
    for entry in node.get("allOf", ()):
        yield Constraint(location, "x-rule", entry, node, rule=entry.get("x-rule"))
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, (*location, name))
    if "items" in node:
        yield from _walk(node["items"], (*location, ITEM))


@functools.cache
def constraints() -> tuple[Constraint, ...]:
    """Every constraint of the request schema, outermost first."""
    return tuple(_walk(components()[REQUEST_SCHEMA], ()))


def unknown_keywords() -> list[str]:
    """Keywords used in the request schema that this walker neither breaks nor follows."""
    unknown: list[str] = []

    def visit(node: Any, location: Location) -> None:
        node = resolve(node)
        if not isinstance(node, dict):
            return
        for key in node:
            if key not in ANNOTATIONS and key not in VALUE_KEYWORDS:
                unknown.append(f"{'.'.join(location) or '(request)'}: {key}")
        for entry in node.get("allOf", ()):
            if "x-rule" not in entry:
                unknown.append(f"{'.'.join(location) or '(request)'}: allOf entry without x-rule")
        if node.get("additionalProperties") not in (None, False):
            unknown.append(f"{'.'.join(location)}: additionalProperties other than false")
        for name, child in node.get("properties", {}).items():
            visit(child, (*location, name))
        if "items" in node:
            visit(node["items"], (*location, ITEM))

    visit(components()[REQUEST_SCHEMA], ())
    return unknown


def schema_at(location: Location) -> Any:
    node: Any = components()[REQUEST_SCHEMA]
    for part in location:
        node = resolve(node)
        node = node["items"] if part == ITEM else node["properties"][part]
    return resolve(node)


# --------------------------------------------------------------------- reaching a location


def places(body: Any, location: Location) -> list[tuple[Any, ...]]:
    """Every concrete path (with list indexes) in `body` that matches `location`."""
    found: list[tuple[Any, ...]] = []

    def go(value: Any, rest: Location, path: tuple[Any, ...]) -> None:
        if not rest:
            found.append(path)
            return
        head, tail = rest[0], rest[1:]
        if head == ITEM:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    go(item, tail, (*path, i))
        elif isinstance(value, dict) and head in value:
            go(value[head], tail, (*path, head))

    go(body, location, ())
    return found


def get(body: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        body = body[part]
    return body


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of `body` with the value at `path` replaced (or set, for a new key)."""
    body = copy.deepcopy(body)
    if not path:
        return value
    parent = get(body, path[:-1])
    parent[path[-1]] = value
    return body


def deleted(body: Any, path: tuple[Any, ...]) -> Any:
    body = copy.deepcopy(body)
    parent = get(body, path[:-1])
    del parent[path[-1]]
    return body


def format_path(path: tuple[Any, ...]) -> str:
    """The same spelling as RequestValidationError's field paths."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(request)"


# --------------------------------------------------------------------- valid requests


def request_strategy() -> Any:
    """Valid request bodies, drawn from openapi.yaml by schemathesis (positive mode)."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(copy.deepcopy(load_spec()))
    operation = schema["/kling/v1/videos/image2video"]["POST"]
    return operation.as_strategy().map(lambda case: case.body).filter(lambda b: isinstance(b, dict))


@functools.cache
def pool(size: int = 400, rounds: int = 6) -> tuple[dict[str, Any], ...]:
    """A fixed set of valid bodies to break one place at a time: drawn with fixed seeds,
    one round of `size` after another until every constrained place occurs in some body
    (how often schemathesis reaches a deep optional object varies with its environment)."""
    from hypothesis import HealthCheck, given, seed, settings

    bodies: list[dict[str, Any]] = []
    wanted = _wanted_locations()
    for round_ in range(rounds):

        @seed(round_)
        @settings(max_examples=size, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(request_strategy())
        def collect(body: dict[str, Any]) -> None:
            bodies.append(copy.deepcopy(body))

        collect()
        if all(any(places(b, location) for b in bodies) for location in wanted):
            break
    return tuple(bodies)


def _wanted_locations() -> set[Location]:
    wanted = {c.location for c in constraints()}
    wanted |= {(*c.location, ITEM) for c in constraints() if c.keyword in ("minItems", "maxItems")}
    return wanted


@functools.cache
def pool_by_location() -> dict[Location, list[tuple[int, tuple[Any, ...]]]]:
    """For every location of every constraint: (pool index, concrete path) pairs reaching it."""
    index: dict[Location, list[tuple[int, tuple[Any, ...]]]] = defaultdict(list)
    wanted = _wanted_locations()
    for i, body in enumerate(pool()):
        for location in wanted:
            for path in places(body, location):
                index[location].append((i, path))
    return dict(index)


def valid_values_at(location: Location) -> list[Any]:
    """Valid values seen at `location` in the pool (for building too-long lists)."""
    return [get(pool()[i], path) for i, path in pool_by_location().get(location, [])]


# --------------------------------------------------------------------- an independent judge


@functools.cache
def _oracle() -> Any:
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(request_root(), validate_formats=True)


def _strict_json(value: Any) -> bool:
    """JSON as the gateway reads it: no NaN/Infinity, text that is valid UTF-8, str keys."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _strict_json(k) and _strict_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_strict_json(v) for v in value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int)


_INT_FORMATS = {"int32": 32, "int64": 64}


def oracle_valid(body: Any) -> bool:
    """Whether `body` is a valid request, judged without the client's code: strict JSON,
    then jsonschema_rs (a Rust validator with ECMA-262 regexes and asserted formats),
    then the OpenAPI integer formats, which JSON Schema validators leave alone."""
    if not _strict_json(body) or not _oracle().is_valid(body):
        return False
    for c in constraints():
        if c.keyword == "format" and c.value in _INT_FORMATS:
            limit = 1 << (_INT_FORMATS[c.value] - 1)
            for path in places(body, c.location):
                value = get(body, path)
                if isinstance(value, int) and not isinstance(value, bool) and not -limit <= value < limit:
                    return False
    return True


# --------------------------------------------------------------------- witnesses


def neutral(schema: Any) -> Any:
    """A plain valid value for a schema of one field, or raise LookupError."""
    schema = resolve(schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: neutral(schema["properties"][name]) for name in schema.get("required", ())}
    if kind == "array":
        return [neutral(schema["items"]) for _ in range(max(1, schema.get("minItems", 0)))]
    if kind == "string" and "pattern" not in schema and "format" not in schema:
        return "x" * max(1, schema.get("minLength", 0))
    if kind in ("number", "integer"):
        low, high = schema.get("minimum", 0), schema.get("maximum", 0)
        return max(low, min(high, 0)) if "maximum" in schema else max(low, 0)
    if kind == "boolean":
        return False
    raise LookupError(f"no neutral value for {schema}")


@functools.cache
def witnesses(location: Location, wanted: int = 8) -> tuple[tuple[dict[str, Any], tuple[Any, ...]], ...]:
    """Valid bodies that have a value at `location`, with the concrete path to it: from
    the pool, and, where the pool has fewer than `wanted`, made from bodies that reach the
    parent by adding a neutral value (kept only if the judge says the result is valid)."""
    found = [(pool()[i], path) for i, path in pool_by_location().get(location, [])]
    if len(found) < wanted and location and location[-1] != ITEM:
        for body, parent in witnesses(location[:-1], wanted):
            if not isinstance(get(body, parent), dict) or location[-1] in get(body, parent):
                continue
            try:
                value = neutral(schema_at(location))
            except LookupError:
                continue
            grown = replaced(body, (*parent, location[-1]), value)
            if oracle_valid(grown):
                found.append((grown, (*parent, location[-1])))
    return tuple(found)
