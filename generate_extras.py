"""What the overlay needs at run time, derived from openapi.yaml; run by generate.sh.

    python generate_extras.py SPEC OUT_DIR

writes into OUT_DIR (the generated package, so that `generate.sh --check` compares them
byte for byte with the rest):

- `openapi.json`: the spec, parsed here once, so no YAML is read at run time.
- `validators.py`: one `is_valid_<schema>(value) -> bool` per component schema, emitted as
  plain Python from the spec into generator-templates/validators.py.jinja. It answers "valid?" only, with the semantics of the
  overlay's jsonschema validator (Draft 2020-12; ECMA-262 `pattern`, where `$` is the end
  of the text; a number is an int or a float, never a bool; formats `uri`, `int32` and
  `int64` asserted). jsonschema itself stays on the error path to write the messages, and a
  property test holds the two to the same answers. A keyword it does not know stops the
  generation: a validator that silently skipped a rule would pass invalid requests.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import jinja2
import yaml

ANNOTATIONS = frozenset({
    "description", "default", "examples", "example", "title", "deprecated", "readOnly",
    "writeOnly", "$comment", "then", "else",  # then/else are read with `if`
})
SCHEMAS_REF = "#/components/schemas/"

# The fixed part of validators.py (what the emitted checks call) is written once, as a
# template beside the generator's own overrides; its output is checked by generate.sh --check.
TEMPLATES = Path(__file__).resolve().parent / "generator-templates"

TYPE_TESTS = {
    "string": "isinstance(x, str)",
    "object": "isinstance(x, dict)",
    "array": "isinstance(x, list)",
    "boolean": "isinstance(x, bool)",
    "null": "x is None",
    "number": "is_number(x)",
    "integer": "_is_integer(x)",
}


class Uncompilable(Exception):
    pass


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def equals(expected: Any) -> str:
    """jsonschema's `equal` against one scalar: True is not 1, 0 is 0.0, "a" is only "a"."""
    if isinstance(expected, bool) or expected is None:
        return f"x is {expected!r}"
    if isinstance(expected, int | float):
        return f"(not isinstance(x, bool | str) and x == {expected!r})"
    if isinstance(expected, str):
        return f"x == {expected!r}"
    raise Uncompilable(f"const/enum value {expected!r}")


class Emitter:
    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self.functions: list[str] = []
        self.constants: list[str] = []
        self.count = 0

    def constant(self, expression: str) -> str:
        name = f"_C{len(self.constants)}"
        self.constants.append(f"{name} = {expression}")
        return name

    def ref(self, ref: Any) -> str:
        if not isinstance(ref, str) or not ref.startswith(SCHEMAS_REF):
            raise Uncompilable(f"$ref {ref!r}")
        name = ref[len(SCHEMAS_REF):]
        if name not in self.schemas:
            raise Uncompilable(f"$ref {ref!r}")
        return f"is_valid_{snake(name)}"

    def component(self, name: str) -> None:
        self.function(self.schemas[name], f"is_valid_{snake(name)}", f"Whether a value is a valid `{name}`.")

    def node(self, schema: Any) -> str:
        """The name of a function checking `schema`."""
        if schema is True:
            return "_always"
        if schema is False:
            return "_never"
        if isinstance(schema, dict) and {k for k in schema if not self.ignored(k)} == {"$ref"}:
            return self.ref(schema["$ref"])
        self.count += 1
        return self.function(schema, f"_v{self.count}", None)

    def function(self, schema: Any, name: str, doc: str | None) -> str:
        if not isinstance(schema, dict):
            raise Uncompilable(f"schema {schema!r}")
        body: list[str] = []
        for key, value in schema.items():
            if self.ignored(key):
                continue
            body += self.keyword(key, value, schema)
        lines = [f"def {name}(x: Any) -> bool:"]
        if doc:
            lines.append(f'    """{doc}"""')
        lines += ["    " + line for line in body] + ["    return True"]
        self.functions.append("\n".join(lines))
        return name

    @staticmethod
    def ignored(key: str) -> bool:
        return key in ANNOTATIONS or key.startswith("x-")

    def keyword(self, key: str, value: Any, schema: dict[str, Any]) -> list[str]:
        if key == "$ref":
            return [f"if not {self.ref(value)}(x):", "    return False"]
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or any(n not in TYPE_TESTS for n in names):
                raise Uncompilable(f"type {value!r}")
            return [f"if not ({' or '.join(TYPE_TESTS[n] for n in names)}):", "    return False"]
        if key == "const":
            return [f"if not {equals(value)}:", "    return False"]
        if key == "enum":
            strings = sorted(v for v in value if isinstance(v, str))
            others = [equals(v) for v in value if not isinstance(v, str)]
            tests = []
            if strings:
                tests.append(f"(isinstance(x, str) and x in {self.constant(f'frozenset({strings!r})')})")
            tests += others
            return [f"if not ({' or '.join(tests) or 'False'}):", "    return False"]
        if key in ("minLength", "maxLength", "minItems", "maxItems"):
            kind = "str" if key.endswith("Length") else "list"
            compare = ">=" if key.startswith("min") else "<="
            return [f"if isinstance(x, {kind}) and not len(x) {compare} {int(value)}:", "    return False"]
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            # jsonschema's failure tests, so that NaN passes as it does there
            fails = {"minimum": "<", "maximum": ">", "exclusiveMinimum": "<=", "exclusiveMaximum": ">="}
            return [f"if is_number(x) and x {fails[key]} {value!r}:", "    return False"]
        if key == "pattern":
            regex = self.constant(f"ecma_regex({value!r})")
            return [f"if isinstance(x, str) and {regex}.search(x) is None:", "    return False"]
        if key == "format":
            if value not in ("uri", "int32", "int64"):
                return []  # an unknown format is an annotation, as in jsonschema
            return [f"if not FORMATS[{value!r}](x):", "    return False"]
        if key == "required":
            names = self.constant(f"frozenset({sorted(value)!r})")
            return [f"if isinstance(x, dict) and not x.keys() >= {names}:", "    return False"]
        if key == "properties":
            lines = ["if isinstance(x, dict):"]
            for prop, sub in value.items():
                check = self.node(sub)
                lines += [f"    if {prop!r} in x and not {check}(x[{prop!r}]):", "        return False"]
            return lines
        if key == "additionalProperties":
            if "patternProperties" in schema:
                raise Uncompilable("additionalProperties beside patternProperties")
            known = self.constant(f"frozenset({sorted(schema.get('properties', ()))!r})")
            if value is False:
                return [f"if isinstance(x, dict) and not x.keys() <= {known}:", "    return False"]
            check = self.node(value)
            return [
                "if isinstance(x, dict):",
                f"    for k in x.keys() - {known}:",
                f"        if not {check}(x[k]):",
                "            return False",
            ]
        if key == "items":
            if "prefixItems" in schema:
                raise Uncompilable("items beside prefixItems")
            check = self.node(value)
            return ["if isinstance(x, list):", "    for item in x:",
                    f"        if not {check}(item):", "            return False"]
        if key in ("allOf", "anyOf", "oneOf"):
            calls = [f"{self.node(v)}(x)" for v in value]
            if key == "allOf":
                return [line for call in calls for line in (f"if not {call}:", "    return False")]
            if key == "anyOf":
                return [f"if not ({' or '.join(calls)}):", "    return False"]
            return [f"if [{', '.join(calls)}].count(True) != 1:", "    return False"]
        if key == "not":
            return [f"if {self.node(value)}(x):", "    return False"]
        if key == "if":
            condition = self.node(value)
            then = self.node(schema.get("then", True))
            otherwise = self.node(schema.get("else", True))
            return [f"if not ({then}(x) if {condition}(x) else {otherwise}(x)):", "    return False"]
        raise Uncompilable(f"keyword {key!r}")


def validators_source(spec: dict[str, Any]) -> str:
    schemas = spec["components"]["schemas"]
    emitter = Emitter(schemas)
    for name in schemas:
        emitter.component(name)
    table = "\n".join(f"    {name!r}: is_valid_{snake(name)}," for name in schemas)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                                     keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("validators.py.jinja").render(
        checks="\n\n\n".join(["\n".join(emitter.constants), *emitter.functions]), table=table)

# ------------------------------------------------------------------ create() fields

FIELDS_MODULE = '''"""The keyword arguments of `create()`: a TypedDict of openapi.yaml's ImageToVideoRequest.

Generated by generate_extras.py (run by generate.sh) from the spec: do not edit. It
imports the generated models so that `typing.get_type_hints(CreateFields)` resolves;
`kling_i2v` loads it on first use, so `import kling_i2v` does not pay for them.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypedDict

from kling_i2v_api.models import (
{imports}
)

from .images import Image

__all__ = ["CreateFields", "ImageLike"]

ImageLike: TypeAlias = Image | str | os.PathLike[str] | bytes
"""An `Image`, an http(s) URL, a path to a local JPEG/PNG, or its bytes."""


class CreateFields(TypedDict, total=False):
    """The keyword arguments of `create()`: the request fields of openapi.yaml, typed
    with the generated enums and models (plain strings and dicts are accepted too and
    checked against the spec)."""

{fields}
'''

DOCS_MODULE = '''"""What the overlay reads about the create request's fields without importing the
generated models. Generated by generate_extras.py (run by generate.sh) from openapi.yaml:
do not edit.
"""

__all__ = ["ENUMS", "FIELDS_DOC", "IMAGE_FIELDS"]

IMAGE_FIELDS = {image_fields!r}
"""Fields marked `x-image`: they take an `Image`, a local path, an http(s) URL or bytes."""

ENUMS = {enums!r}
"""The spec's enums, as generated classes of kling_i2v_api.models."""

FIELDS_DOC = """\\
{doc}"""
"""Every field of `create()`, with its type, default and description."""
'''


def _component(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref[len(SCHEMAS_REF):] if isinstance(ref, str) and ref.startswith(SCHEMAS_REF) else None


def field_type(name: str, node: dict[str, Any], schemas: dict[str, Any], used: set[str]) -> str:
    """The annotation of one create() keyword: generated enums and models, or what the
    client turns into them (plain strings, mappings, digits as int for digit enums)."""
    if node.get("x-image"):
        return "ImageLike"
    component = _component(node)
    if component is not None:
        target = schemas[component]
        used.add(component)
        if "enum" in target:
            digits = all(isinstance(v, str) and v.isdigit() for v in target["enum"])
            return f"{component} | str" + (" | int" if digits else "")
        return f"{component} | Mapping[str, Any]"
    kind = node.get("type")
    if kind == "array":
        return f"Sequence[{field_type(name, node['items'], schemas, used)}]"
    simple = {"string": "str", "number": "float", "integer": "int", "boolean": "bool"}
    if kind not in simple:
        raise Uncompilable(f"a create() field {name!r} of type {kind!r}")
    return simple[kind]


def field_doc(node: dict[str, Any], schemas: dict[str, Any]) -> str:
    """The spec's description of a field, then its choices, range and default."""
    component = _component(node)
    resolved = {**(schemas[component] if component else {}), **node}
    parts = [" ".join(str(resolved.get("description", "")).split())]
    if "enum" in resolved:
        parts.append("One of: " + ", ".join(str(v) for v in resolved["enum"]) + ".")
    low, high = resolved.get("minimum"), resolved.get("maximum")
    if low is not None and high is not None:
        parts.append(f"From {low} to {high}.")
    if "maxLength" in resolved:
        parts.append(f"At most {resolved['maxLength']} characters.")
    if "default" in node and component is not None:
        # a default beside a $ref is one the client fills in (model_name)
        parts.append(f"Default: {node['default']} (the client fills it in).")
    elif "default" in resolved:
        parts.append(f"Default: {json.dumps(resolved['default'])} (the gateway's, when not sent).")
    return " ".join(p for p in parts if p)


def fields_sources(spec: dict[str, Any]) -> tuple[str, str]:
    schemas = spec["components"]["schemas"]
    properties: dict[str, Any] = schemas["ImageToVideoRequest"]["properties"]
    used: set[str] = set()
    typed = {name: field_type(name, node, schemas, used) for name, node in properties.items()}
    docs = {name: field_doc(node, schemas) for name, node in properties.items()}
    lines = []
    for name, annotation in typed.items():
        lines.append(f"    {name}: {annotation}")
        if docs[name]:
            wrapped = textwrap.wrap(docs[name], 88, break_on_hyphens=False)
            lines.append('    """' + "\n    ".join(wrapped) + '"""')
    fields_module = FIELDS_MODULE.format(
        imports="\n".join(f"    {name}," for name in sorted(used)), fields="\n".join(lines),
    )
    text = "".join(
        f"{name}: {typed[name]}\n" + "".join(f"    {line}\n" for line in textwrap.wrap(docs[name], 84, break_on_hyphens=False))
        for name in typed
    )
    docs_module = DOCS_MODULE.format(
        image_fields=tuple(n for n, node in properties.items() if node.get("x-image")),
        enums=tuple(n for n, node in schemas.items() if "enum" in node),
        doc=text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"'),
    )
    return fields_module, docs_module


def main(spec_path: str, out_dir: str, overlay_dir: str) -> None:
    spec = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    out = Path(out_dir)
    text = json.dumps(spec, indent=1, ensure_ascii=False) + "\n"
    (out / "openapi.json").write_text(text, encoding="utf-8")
    try:
        source = validators_source(spec)
    except Uncompilable as exc:
        sys.exit(f"generate_extras.py: openapi.yaml uses {exc}, which the fast validators "
                 "do not implement; teach generate_extras.py, so no rule goes unchecked")
    (out / "validators.py").write_text(source, encoding="utf-8")
    fields_module, docs_module = fields_sources(spec)
    (Path(overlay_dir) / "_create_fields.py").write_text(fields_module, encoding="utf-8")
    (Path(overlay_dir) / "_fields_doc.py").write_text(docs_module, encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
