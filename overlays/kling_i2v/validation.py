"""Client-side validation, read from the openapi.yaml shipped in the package.

Every constraint of the request schema (enums, ranges, lengths, item counts and the
cross-field rules in its `allOf`) is checked by `jsonschema` against the spec itself,
so a spec change needs no change here. Errors name the field path, the rule and the
(shortened) value, and list every violation at once.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from .errors import MISSING, RequestValidationError, Violation

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

__all__ = [
    "closest", "enum_values", "format_path", "load_spec", "request_schema", "rule_of", "validate_request",
    "violations",
]

REQUEST_SCHEMA = "ImageToVideoRequest"


@functools.cache
def load_spec() -> dict[str, Any]:
    """openapi.yaml, as generate.sh writes it in JSON into the generated package: no YAML
    is parsed at run time."""
    text = (files("kling_i2v_api") / "openapi.json").read_text(encoding="utf-8")
    spec: dict[str, Any] = json.loads(text)
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
    """jsonschema, for the messages: with the generated checks' ECMA-262 `pattern`, formats
    and numbers, so that the two agree (tests/test_benchmarks_smoke.py holds them to it)."""
    from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
    from kling_i2v_api.validators import FORMATS, ecma_regex, is_number

    def pattern(validator: Any, regex: str, instance: Any, _: Any) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not ecma_regex(regex).search(instance):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    formats = FormatChecker(())
    for name_, check in FORMATS.items():
        formats.checks(name_)(check)
    root = {"$ref": f"#/components/schemas/{name}", "components": load_spec()["components"]}
    Draft202012Validator.check_schema(root)
    # a JSON number is an int or a float: Decimal, Fraction and complex would pass
    # jsonschema's numbers.Number, then fail to compare (complex) or to serialize
    types = Draft202012Validator.TYPE_CHECKER.redefine("number", lambda _, x: is_number(x))
    cls = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": pattern}, type_checker=types
    )
    validator: Draft202012Validator = cls(root, format_checker=formats)
    return validator


def violations(
    body: Mapping[str, Any], name: str = REQUEST_SCHEMA, *, allow_unknown_model: bool = False
) -> list[Violation]:
    """Every way `body` breaks the schema `name`, as readable violations.

    With `allow_unknown_model`, a `model_name` the spec does not list passes if it is a
    non-empty string: the gateway decides which models a token may use (gateway-facts.md,
    "Models on this route"), and `capabilities.capability_warnings` says it is unknown."""
    if allow_unknown_model and name == REQUEST_SCHEMA:
        body = _with_listed_model(body)
    # what JSON cannot carry comes first: the schema would let NaN or a lone surrogate
    # through, and then the request could not be written at all
    found: list[Violation] = list(_not_json(body, ()))
    check = _fast_check(name)
    if not found and check is not None and check(body):
        return []
    seen: set[tuple[str, str]] = set()
    for error in sorted(_validator(name).iter_errors(body), key=_order):
        for violation in _explain(error, name):
            key = (violation.path, violation.rule)
            if key not in seen:
                seen.add(key)
                found.append(violation)
    return found


def validate_request(body: Mapping[str, Any], *, allow_unknown_model: bool = False) -> None:
    """Raise RequestValidationError listing every violation of the create request, or
    return None. An unlisted `model_name` is a violation unless `allow_unknown_model`."""
    found = violations(body, allow_unknown_model=allow_unknown_model)
    if found:
        raise RequestValidationError(found)


def _with_listed_model(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`body` with an unlisted (non-empty string) model name stood in by a listed one, so
    that every other rule is still checked."""
    model = body.get("model_name")
    if isinstance(model, str) and model and model not in enum_values("ModelName"):
        return {**body, "model_name": enum_values("ModelName")[0]}
    return body


def _not_json(value: Any, path: tuple[Any, ...]) -> Iterator[Violation]:
    if isinstance(value, float) and not math.isfinite(value):
        yield Violation(format_path(path), "must be a finite number", value)
    elif isinstance(value, str) and not value.isascii() and not _is_utf8(value):
        yield Violation(format_path(path), "must be text without lone surrogates", value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _not_json(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _not_json(item, (*path, index))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def _fast_check(name: str) -> Callable[[Any], bool] | None:
    """The generated "valid?" check of component `name` (kling_i2v_api.validators, emitted
    from the spec by generate.sh): a few microseconds where jsonschema, which builds an
    error object for every failing `anyOf` branch on its way to "valid", takes ~110 us."""
    from kling_i2v_api.validators import VALIDATORS

    return VALIDATORS.get(name)


# --------------------------------------------------------------------- messages


def _order(error: ValidationError) -> tuple[str, ...]:
    return tuple(str(p) for p in error.absolute_path)


def format_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(request)"


def rule_of(error: ValidationError, name: str) -> str | None:
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
        # a regular expression is no message for a user: the spec gives every pattern an
        # x-rule (tests/test_validation.py checks), and this is only the fallback
        return "is not written the way this field must be"
    if keyword == "format":
        return _FORMAT_WORDS.get(str(expected), f"must be a valid {expected}")
    return error.message


_FORMAT_WORDS = {
    "uri": "must be an absolute URL, such as https://example.com/callback",
    "int32": "must be a whole number that fits in 32 bits",
    "int64": "must be a whole number that fits in 64 bits",
}


def _explain(error: ValidationError, name: str) -> Iterator[Violation]:
    where = list(error.absolute_path)
    rule = rule_of(error, name)
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
            close = closest(str(extra), sorted(allowed))
            yield Violation(format_path([*where, extra]), "is not a field of this object", instance[extra],
                            hint=f"did you mean {close!r}?" if close else None)
        return
    if error.validator == "not" and rule:
        # a rule about several fields: name the ones present
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        involved = [k for k in _names_in(expected) if k in instance]
        if not involved:  # a rule about one value (a blank prompt): show that value
            yield Violation(format_path(where), rule, error.instance)
            return
        yield Violation(format_path([*where, " + ".join(involved)]), rule, {k: instance[k] for k in involved})
        return
    # the spec lists the models; the way around the list is the client's, so it is told here
    unlisted_model = error.validator == "enum" and where == ["model_name"] and name == REQUEST_SCHEMA
    yield Violation(format_path(where), rule or _keyword_rule(error), error.instance,
                    allowed_by="allow_unknown_model" if unlisted_model else None)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` is most likely a misspelling of (`durration` -> `duration`), if
    any is close enough; the CSV's column names are told the same way."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


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
