"""Client-side validation, read from the openapi.yaml shipped in the package.

Every constraint of the request schema (enums, ranges, lengths, item counts and the
cross-field rules in its `allOf`) is checked by `jsonschema` against the spec itself,
so a spec change needs no change here. Errors name the field path, the rule and the
(shortened) value, and list every violation at once.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from .errors import MISSING, RequestValidationError, Violation

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

__all__ = [
    "enum_values", "format_path", "load_spec", "request_schema", "rule_of", "validate_request",
    "violations",
]

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
    from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

    def pattern(validator: Any, regex: str, instance: Any, _: Any) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not _ecma(regex).search(instance):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    formats = FormatChecker(())
    for name_, check in _FORMATS.items():
        formats.checks(name_)(check)
    root = {"$ref": f"#/components/schemas/{name}", "components": load_spec()["components"]}
    Draft202012Validator.check_schema(root)
    # a JSON number is an int or a float: Decimal, Fraction and complex would pass
    # jsonschema's numbers.Number, then fail to compare (complex) or to serialize
    types = Draft202012Validator.TYPE_CHECKER.redefine("number", lambda _, x: _TYPES["number"](x))
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
def _ecma(pattern: str) -> re.Pattern[str]:
    """`pattern` with ECMA-262's `$` (the end of the text; Python's `$` also matches
    before a final newline, so "5\\n" would pass ^...$)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


def _is_uri(value: object) -> bool:
    """RFC 3986 `URI`, by the validator jsonschema itself uses for `format: uri`."""
    from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]  # noqa: PLC0415

    if not isinstance(value, str):
        return True
    # its regex ends in `$`, which lets a final newline through; no URI has whitespace
    if _NOT_IN_URI.search(value):
        return False
    return validate_rfc3986(value, rule="URI") is not None


_NOT_IN_URI = re.compile(r"[\s\x00-\x1f\x7f]")


def _int_format(bits: int) -> Callable[[object], bool]:
    limit = 1 << (bits - 1)
    return lambda x: not isinstance(x, int) or isinstance(x, bool) or -limit <= x < limit


# formats are asserted: the spec's `format: uri` and OpenAPI's int32/int64 mean that
# anything else is refused by the gateway
_FORMATS: dict[str, Callable[[object], bool]] = {
    "uri": _is_uri, "int32": _int_format(32), "int64": _int_format(64),
}


# --------------------------------------------------------------------- fast path

# jsonschema walks the schema keyword by keyword and builds an error object for every
# failing `anyOf` branch, even on its way to "valid": ~110 us per create, a third of a
# loopback round trip. Valid bodies are the common case, so the same spec is also compiled
# into plain predicates that only answer "valid?". A body they pass is valid (each keyword
# below mirrors jsonschema's Draft 2020-12 semantics); anything else, and any schema using
# a keyword not mirrored here, goes to jsonschema, which alone writes the messages.

_Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset(
    {"description", "default", "examples", "example", "title", "deprecated",
     "readOnly", "writeOnly", "$comment", "then", "else"}  # then/else are read with `if`
)
_SCHEMAS_REF = "#/components/schemas/"
_TYPES: dict[str, _Check] = {
    "string": lambda x: isinstance(x, str),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool))
    or (isinstance(x, float) and x.is_integer()),
}


class _Uncompilable(Exception):
    pass


@functools.cache
def _fast_check(name: str) -> _Check | None:
    # What is mirrored is _validator(): Draft 2020-12 with ECMA-262 `pattern`, int|float
    # numbers and the formats of _FORMATS asserted.
    try:
        return _FastCompiler(load_spec()["components"]["schemas"]).ref(_SCHEMAS_REF + name)
    except _Uncompilable:
        return None


def _all_of(checks: list[_Check]) -> _Check:
    def all_of(x: Any) -> bool:
        for check in checks:
            if not check(x):
                return False
        return True

    return all_of


def _any_of(checks: list[_Check]) -> _Check:
    def any_of(x: Any) -> bool:
        for check in checks:
            if check(x):
                return True
        return False

    return any_of


def _equals(expected: Any) -> _Check:
    """jsonschema's `equal` against one scalar: True is not 1, 0 is 0.0, "a" is only "a"."""
    if isinstance(expected, bool) or expected is None:
        return lambda x: x is expected
    if isinstance(expected, int | float):
        return lambda x: not isinstance(x, bool | str) and x == expected
    if isinstance(expected, str):
        return lambda x: x == expected
    raise _Uncompilable(f"const/enum value {expected!r}")


class _FastCompiler:
    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self._schemas = schemas
        self._refs: dict[str, _Check] = {}

    def ref(self, ref: Any) -> _Check:
        if not isinstance(ref, str) or not ref.startswith(_SCHEMAS_REF):
            raise _Uncompilable(f"$ref {ref!r}")
        if ref not in self._refs:
            name = ref[len(_SCHEMAS_REF) :]
            if name not in self._schemas:
                raise _Uncompilable(f"$ref {ref!r}")
            compiled: list[_Check] = []
            self._refs[ref] = lambda x: compiled[0](x)  # a recursive $ref meets this
            compiled.append(self.node(self._schemas[name]))
        return self._refs[ref]

    def node(self, schema: Any) -> _Check:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, dict):
            raise _Uncompilable(f"schema {schema!r}")
        checks = [
            self.keyword(key, value, schema)
            for key, value in schema.items()
            if key not in _ANNOTATIONS and not key.startswith("x-")
        ]
        return checks[0] if len(checks) == 1 else _all_of(checks)

    def keyword(self, key: str, value: Any, schema: dict[str, Any]) -> _Check:
        if key == "$ref":
            return self.ref(value)
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or any(n not in _TYPES for n in names):
                raise _Uncompilable(f"type {value!r}")
            kinds = [_TYPES[n] for n in names]
            return kinds[0] if len(kinds) == 1 else lambda x: any(kind(x) for kind in kinds)
        if key == "const":
            return _equals(value)
        if key == "enum":
            options = [_equals(v) for v in value]
            strings = frozenset(v for v in value if isinstance(v, str))
            return lambda x: (isinstance(x, str) and x in strings) or any(o(x) for o in options)
        if key in ("minLength", "maxLength", "minItems", "maxItems"):
            kind = str if key.endswith("Length") else list
            low = key.startswith("min")
            return lambda x: not isinstance(x, kind) or (len(x) >= value if low else len(x) <= value)
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            number = _TYPES["number"]
            # written as jsonschema's failure tests, negated, so that NaN passes as it does there
            compare: _Check = {
                "minimum": lambda x: not x < value, "maximum": lambda x: not x > value,
                "exclusiveMinimum": lambda x: not x <= value,
                "exclusiveMaximum": lambda x: not x >= value,
            }[key]
            return lambda x: not number(x) or compare(x)
        if key == "pattern":
            search = _ecma(value).search
            return lambda x: not isinstance(x, str) or search(x) is not None
        if key == "format":
            return _FORMATS.get(value, lambda x: True)
        if key == "required":
            names = frozenset(value)
            return lambda x: not isinstance(x, dict) or x.keys() >= names
        if key == "properties":
            props = {k: self.node(v) for k, v in value.items()}

            def properties(x: Any) -> bool:
                if isinstance(x, dict):
                    for k, v in x.items():
                        check = props.get(k)
                        if check is not None and not check(v):
                            return False
                return True

            return properties
        if key == "additionalProperties" and "patternProperties" not in schema:
            known = frozenset(schema.get("properties", ()))
            extra = self.node(value)
            return lambda x: not isinstance(x, dict) or all(extra(x[k]) for k in x.keys() - known)
        if key == "items" and "prefixItems" not in schema:
            item = self.node(value)
            return lambda x: not isinstance(x, list) or all(item(i) for i in x)
        if key in ("allOf", "anyOf", "oneOf"):
            parts = [self.node(v) for v in value]
            if key == "allOf":
                return _all_of(parts)
            if key == "anyOf":
                return _any_of(parts)
            return lambda x: sum(1 for p in parts if p(x)) == 1
        if key == "not":
            inner = self.node(value)
            return lambda x: not inner(x)
        if key == "if":
            condition = self.node(value)
            then, otherwise = self.node(schema.get("then", True)), self.node(schema.get("else", True))
            return lambda x: then(x) if condition(x) else otherwise(x)
        raise _Uncompilable(f"keyword {key!r}")


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
            yield Violation(format_path([*where, extra]), "is not a field of this object", instance[extra])
        return
    if error.validator == "not" and rule:
        # a rule about several fields: name the ones present
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        involved = [k for k in _names_in(expected) if k in instance]
        path = format_path([*where, " + ".join(involved)]) if involved else format_path(where)
        yield Violation(path, rule, {k: instance[k] for k in involved})
        return
    if error.validator == "enum" and where == ["model_name"] and name == REQUEST_SCHEMA:
        # the spec lists the models; the way around the list is the client's, so it is told here
        rule = _keyword_rule(error) + _UNKNOWN_MODEL_HINT
    yield Violation(format_path(where), rule or _keyword_rule(error), error.instance)


_UNKNOWN_MODEL_HINT = (
    "; to send a model the spec does not list, pass allow_unknown_model=True"
    " (CLI: --allow-unknown-model)"
)


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
