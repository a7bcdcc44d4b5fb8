"""Suite 1, invalid requests: every constraint of openapi.yaml, broken just outside its
edge and with random garbage, is refused before anything is sent, naming the field; and
valid requests drawn from the same spec pass and go out unchanged.

The constraints are found by walking the spec (tests/hostile/spec_walk.py), so a new enum,
range, length, item count, pattern, format, required field or x-rule is covered without
touching this file, and a JSON Schema keyword the walker cannot break fails the suite.
Each broken body is also shown to an independent judge (jsonschema_rs, with ECMA-262
regexes and asserted formats) to make sure it really is invalid.

"Nothing sent" is counted at the transport: the client's httpx.Client runs on a
MockTransport that counts every request that reaches it.
"""

from __future__ import annotations

import copy
import json
import math
import re
import struct
import zlib
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st
from kling_i2v import ImageError, KlingClient, RequestValidationError
from kling_i2v.fields import IMAGE_FIELDS as _IMAGE_FIELDS
from kling_i2v.images import rules as image_rules
from kling_i2v.validation import request_schema, violations

from tests.hostile import figures
from tests.hostile.conftest import hostile
from tests.hostile.spec_walk import (
    ITEM,
    Constraint,
    constraints,
    deleted,
    format_path,
    get,
    oracle_valid,
    replaced,
    request_strategy,
    resolve,
    unknown_keywords,
    valid_values_at,
    witnesses,
)

TOKEN = "sk-hostile-invalid-0001"
BASE_URL = "http://127.0.0.1:9"
CREATED = {"id": "1", "task_id": "1", "object": "video", "status": "queued", "progress": 0}
URL_IMAGE = "https://example.com/cat.png"

EXAMPLES_PER_CONSTRAINT = 25

tally: Counter[str] = Counter()
by_keyword: Counter[str] = Counter()


class CountingTransport(httpx.BaseTransport):
    """Answers every request with a created task, and counts them."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(200, json=CREATED)


class Harness:
    def __init__(self) -> None:
        self.transport = CountingTransport()
        self.client = KlingClient(
            TOKEN, base_url=BASE_URL, max_retries=0,
            http_client=httpx.Client(base_url=BASE_URL, transport=self.transport),
        )

    @property
    def sent(self) -> int:
        return len(self.transport.requests)


_report = figures.report_after("invalid_requests", lambda: {
    "constraints_found": len(constraints()) + len(_image_rule_keys()),
    "constraints_by_keyword": dict(sorted(by_keyword.items())),
    "invalid_cases_run": tally["invalid"],
    "garbage_cases_run": tally["garbage"],
    "garbage_refused": tally["garbage_refused"],
    "garbage_accepted_as_valid": tally["garbage_valid"],
    "image_rule_cases_run": tally["image"],
    "valid_cases_run": tally["valid"],
    "requests_sent_for_invalid_input": tally["sent_invalid"],
})


def refused(harness: Harness, body: Any, **fields: Any) -> RequestValidationError:
    """create() must raise RequestValidationError and send nothing."""
    before = harness.sent
    with pytest.raises(RequestValidationError) as info:
        harness.client.create(body, **fields)
    tally["sent_invalid"] += harness.sent - before
    assert harness.sent == before, "an invalid request reached the transport"
    error = info.value
    assert error.violations, "refused without saying why"
    assert len(str(error)) < 4000, "the message should shorten values, not dump them"
    str(error).encode("utf-8")  # printable: a message that cannot be written out is no message
    return error


# ============================================================================ the walk


def test_the_spec_uses_no_keyword_the_suite_cannot_break() -> None:
    unknown = [u for u in unknown_keywords() if not u.endswith(": x-image-rules")]
    assert unknown == [], (
        "openapi.yaml's request schema uses keywords tests/hostile/spec_walk.py does not "
        f"know how to violate: {unknown}; teach the walker, so they are covered"
    )


def test_every_constraint_can_be_reached_from_a_valid_request() -> None:
    unreachable = [c.id for c in constraints() if not witnesses(c.location)]
    assert unreachable == []
    kinds = {c.keyword for c in constraints()}
    # the kinds the issue lists are all present in today's spec (a sanity check of the walk)
    assert {"type", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems",
            "maxItems", "pattern", "format", "required", "additionalProperties", "x-rule"} <= kinds
    by_keyword.update(c.keyword for c in constraints())
    by_keyword.update("x-image-rules" for _ in _image_rule_keys())


# ============================================================================ values just outside


def _json_of_type(kind: str) -> st.SearchStrategy[Any]:
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "integer": st.integers(min_value=-(10**20), max_value=10**20),
        "number": st.floats(allow_nan=False, allow_infinity=False, width=64),
        "string": st.text(max_size=12),
        "array": st.lists(st.integers() | st.text(max_size=3), max_size=3),
        "object": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=3), max_size=3),
    }[kind]


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return {
        "null": value is None, "boolean": isinstance(value, bool), "string": isinstance(value, str),
        "array": isinstance(value, list), "object": isinstance(value, dict),
    }[kind]


def _near_misses(word: str) -> list[str]:
    misses = [word.upper(), word.title(), f" {word}", f"{word} ", f"{word}x", word[:-1], f"{word}\n",
              word.replace("_", "-"), "", "null"]
    if word.isdigit():
        misses += [str(int(word) + 1), str(int(word) - 1), f"0{word}", f"{word}.0", f"+{word}"]
    return misses


def _padded(text: str, length: int) -> str:
    text = text or "x"
    return (text * (length // len(text) + 1))[:length]


def _below(c: Constraint, bound: Any, exclusive: bool) -> st.SearchStrategy[Any]:
    """Numbers below `bound` (at or below it when `exclusive`)."""
    if resolve(c.schema).get("type") == "integer":
        top = bound if exclusive else bound - 1
        return st.sampled_from([top, top - 1]) | st.integers(max_value=top, min_value=top - 10**6)
    edge = bound if exclusive else math.nextafter(bound, -math.inf)
    return (st.sampled_from([edge, bound - 1e-9 if not exclusive else bound, bound - 1, -math.inf])
            | st.floats(max_value=edge, allow_nan=False))


def _above(c: Constraint, bound: Any, exclusive: bool) -> st.SearchStrategy[Any]:
    if resolve(c.schema).get("type") == "integer":
        low = bound if exclusive else bound + 1
        return st.sampled_from([low, low + 1, 2**63]) | st.integers(min_value=low, max_value=low + 10**6)
    edge = bound if exclusive else math.nextafter(bound, math.inf)
    return (st.sampled_from([edge, bound + 1e-9 if not exclusive else bound, bound + 1, math.inf, 10**400])
            | st.floats(min_value=edge, allow_nan=False))


def _not_a_uri() -> st.SearchStrategy[str]:
    import jsonschema_rs

    judge = jsonschema_rs.validator_for({"type": "string", "format": "uri"}, validate_formats=True)
    fixed = st.sampled_from(["", "not a uri", "example.com/hook", "//example.com/hook",
                             "http://exa mple.com/", "1http://x", "http://[::1/", "http://x/%zz",
                             ":no-scheme", "http://x\n", "http://é.example/"])
    return (fixed | st.text(max_size=20)).filter(lambda s: not judge.is_valid(s))


def violating_value(c: Constraint, current: Any) -> st.SearchStrategy[Any]:
    """Values for the place of `c` that break `c` (and only make sense there)."""
    k, v = c.keyword, c.value
    if k == "type":
        kinds = v if isinstance(v, list) else [v]
        others = [t for t in ("null", "boolean", "integer", "number", "string", "array", "object")
                  if not any(_is_type_name_overlap(t, kind) for kind in kinds)]
        return st.one_of([_json_of_type(t) for t in others]).filter(
            lambda x: not any(_is_type(x, kind) for kind in kinds))
    if k == "enum":
        misses = [m for e in v for m in _near_misses(str(e))]
        return (st.sampled_from(misses) | st.text(max_size=16)).filter(lambda x: x not in v)
    if k == "const":
        return (st.sampled_from([None, 0, "", True]) | st.text(max_size=5)).filter(lambda x: x != v)
    if k == "minimum":
        return _below(c, v, exclusive=False)
    if k == "exclusiveMinimum":
        return _below(c, v, exclusive=True)
    if k == "maximum":
        return _above(c, v, exclusive=False)
    if k == "exclusiveMaximum":
        return _above(c, v, exclusive=True)
    if k == "minLength":
        return st.text(max_size=max(0, v - 1)).filter(lambda s: len(s) < v)
    if k == "maxLength":
        return st.builds(_padded, st.text(min_size=1, max_size=8), st.integers(v + 1, v + 40))
    if k in ("minItems", "maxItems"):
        items = valid_values_at((*c.location, ITEM)) or [None]
        sizes = st.integers(0, v - 1) if k == "minItems" else st.integers(v + 1, v + 5)
        return sizes.flatmap(lambda n: st.lists(st.sampled_from(items), min_size=n, max_size=n))
    if k == "pattern":
        good = st.from_regex(v, fullmatch=True)
        edits = st.sampled_from([lambda s: s + "\n", lambda s: " " + s, lambda s: s + " ",
                                 lambda s: "0" + s, lambda s: s + "0", lambda s: s + ".5",
                                 lambda s: "", lambda s: s * 3])
        return st.one_of(st.builds(lambda s, f: f(s), good, edits), st.text(max_size=6)).filter(
            lambda s: not _ecma_fullmatch(v, s))
    if k == "not" and set(v) - {"x-rule"} == {"pattern"}:
        # a value the pattern matches is what `not` refuses ("   " for the prompt)
        return st.from_regex(v["pattern"], fullmatch=True).filter(lambda s: _ecma_fullmatch(v["pattern"], s))
    if k == "format" and v == "uri":
        return _not_a_uri()
    if k == "format" and v in ("int32", "int64"):
        limit = 1 << ((32 if v == "int32" else 64) - 1)
        return st.sampled_from([limit, -limit - 1, limit * 2, 10**30]) | st.integers(min_value=limit)
    raise AssertionError(f"no way to break {c.id}: teach violating_value()")


def _is_type_name_overlap(other: str, kind: str) -> bool:
    return other == kind or (kind == "number" and other == "integer")


def _ecma_fullmatch(pattern: str, text: str) -> bool:
    import jsonschema_rs

    return bool(jsonschema_rs.is_valid({"type": "string", "pattern": pattern}, text))


@st.composite
def broken_body(draw: st.DrawFn, c: Constraint) -> tuple[dict[str, Any], set[str], str]:
    """A valid body with `c` broken at one place: (body, acceptable field paths, how)."""
    body, path = draw(st.sampled_from(witnesses(c.location)))
    where = format_path(path)
    if c.keyword == "required":
        if c.name not in get(body, path):
            body = replaced(body, (*path, c.name), None)  # pragma: no cover - witnesses have it
        return deleted(body, (*path, c.name)), {format_path((*path, c.name))}, "missing"
    if c.keyword == "additionalProperties":
        known = set(resolve(c.schema).get("properties", {}))
        name = draw(st.sampled_from(["extra", "Image", "prompt ", "model", "__proto__", ""])
                    | st.text(max_size=10))
        if name in known:
            name += "_unknown"
        value = draw(_json_of_type("string") | _json_of_type("integer") | st.none())
        return replaced(body, (*path, name), value), {format_path((*path, name))}, "extra field"
    if c.keyword == "x-rule":
        broken = draw(st.sampled_from(rule_breakers(c)))
        return broken, {c.rule or ""}, "x-rule"
    value = draw(violating_value(c, get(body, path)))
    assume(path or value is not None)  # create(None) means "no request object", not a null body
    return replaced(body, path, value), {where}, repr(value)[:40]


def rule_breakers(c: Constraint) -> list[dict[str, Any]]:
    """Bodies that break the x-rule `c` by one change to a valid body: a field of the
    object the rule is about removed, or given a valid value taken from another body."""
    return _rule_breakers(c.location, c.rule)


_breakers: dict[tuple[Any, ...], list[dict[str, Any]]] = {}


def _rule_breakers(location: tuple[str, ...], rule: str | None) -> list[dict[str, Any]]:
    key = (location, rule)
    if key in _breakers:
        return _breakers[key]
    import jsonschema_rs

    c = next(c for c in constraints() if c.keyword == "x-rule" and c.location == location and c.rule == rule)
    entry = {k: v for k, v in c.value.items() if k != "x-rule"}
    judge = jsonschema_rs.validator_for(entry)
    node = resolve(c.schema)
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for body, path in witnesses(location, 40)[:200]:
        target = get(body, path)
        candidates = [deleted(body, (*path, name)) for name in target]
        for name in node.get("properties", {}):
            for value in valid_values_at((*location, name))[:6]:
                candidates.append(replaced(body, (*path, name), value))
        for candidate in candidates:
            if not judge.is_valid(get(candidate, path)):
                text = json.dumps(candidate, sort_keys=True)
                if text not in seen:
                    seen.add(text)
                    found.append(candidate)
    assert found, f"no single change to a valid body breaks {rule!r}"
    _breakers[key] = found
    return found


VALUE_CONSTRAINTS = constraints()


@pytest.mark.parametrize("c", VALUE_CONSTRAINTS, ids=[c.id[:90] for c in VALUE_CONSTRAINTS])
@hostile(EXAMPLES_PER_CONSTRAINT)
@given(data=st.data())
def test_a_value_just_outside_each_constraint_is_refused_naming_the_field(
    c: Constraint, data: st.DataObject
) -> None:
    harness = _harness()
    body, names, how = data.draw(broken_body(c), label="broken body")
    tally["invalid"] += 1
    assert not oracle_valid(body), f"the suite built a valid body for {c.id} ({how}): fix the generator"
    if not isinstance(body, dict):
        # the request itself is not an object: create(request) may also say so with a TypeError
        before = harness.sent
        with pytest.raises((TypeError, RequestValidationError)):
            harness.client.create(body)
        assert harness.sent == before
        return
    error = refused(harness, body)
    text = str(error)
    if c.keyword == "x-rule":
        assert any(v.rule == c.rule for v in error.violations), f"{c.rule!r} not in {text}"
    else:
        assert names & set(error.fields), f"expected {names} among {error.fields} for {how}"
        assert any(n in text for n in names)


_shared: list[Harness] = []


def _harness() -> Harness:
    # hypothesis and function-scoped fixtures do not mix; one client serves the module
    if not _shared:
        _shared.append(Harness())
    return _shared[0]


# ============================================================================ random garbage

NASTY = [
    float("nan"), float("inf"), -float("inf"), -0.0, 2**63, -(2**63) - 1, 10**400, True, False, None,
    "", " ", "\x00", "\ud800", "a\udfffb", "\u202e", "😀" * 3, "null", "0", "[]", "{}",
    "%s%n", "' OR 1=1 --", "<script>x</script>", "../../etc/passwd", "data:image/png;base64,AAAA",
    [], {}, [None], {"": None}, b"bytes", {1, 2}, object(), 1j, Decimal("0.5"), Decimal("NaN"),
    Fraction(1, 3),
]

garbage = st.recursive(
    st.sampled_from(NASTY) | st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)

ALL_LOCATIONS = sorted({c.location for c in constraints()} - {()})


def _named(error: RequestValidationError, path: tuple[Any, ...]) -> bool:
    """The error names the place (or something inside it), or a rule about its field."""
    where = format_path(path)
    leaf = next((p for p in reversed(path) if isinstance(p, str)), "")
    for v in error.violations:
        if v.path == where or v.path.startswith((where + ".", where + "[")):
            return True
        if v.rule and leaf and re.search(rf"\b{re.escape(leaf)}\b", v.rule):
            return True
        if leaf and re.search(rf"\b{re.escape(leaf)}\b", v.path):
            return True
    return False


def _check_garbage(harness: Harness, body: Any, path: tuple[Any, ...]) -> None:
    tally["garbage"] += 1
    before = harness.sent
    if oracle_valid(body):
        tally["garbage_valid"] += 1
        if path and path[0] in _IMAGE_FIELDS and isinstance(body.get(path[0]), str):
            # the one rule beyond the schema: an image string that reads as a URL must be
            # http(s), a `data:` URL included (gateway-facts.md: base64 goes without it)
            try:
                harness.client.create(body)
            except ImageError as exc:
                assert str(exc).startswith(path[0]) and harness.sent == before, exc
                return
        else:
            harness.client.create(body)  # valid after all: it must go out, unchanged
        assert harness.sent == before + 1
        assert json.loads(harness.transport.requests[-1].content) == _with_id(body, harness)
        return
    tally["garbage_refused"] += 1
    error = refused(harness, body)
    assert _named(error, path), f"{format_path(path)} not named in {error}"


def _with_id(body: dict[str, Any], harness: Harness) -> dict[str, Any]:
    """`body` with what the client fills in: a fresh external_task_id, the default model."""
    sent = json.loads(harness.transport.requests[-1].content)
    return {"model_name": "kling-v2-master", **body,
            "external_task_id": body.get("external_task_id", sent["external_task_id"])}


@hostile(400)
@given(data=st.data())
def test_garbage_anywhere_is_refused_naming_the_place_or_sent_if_valid(data: st.DataObject) -> None:
    harness = _harness()
    location = data.draw(st.sampled_from(ALL_LOCATIONS), label="location")
    body, path = data.draw(st.sampled_from(witnesses(location)), label="witness")
    value = data.draw(garbage, label="garbage")
    _check_garbage(harness, replaced(body, path, value), path)


@hostile(150)
@given(body=st.dictionaries(st.sampled_from(sorted(request_schema()["properties"])) | st.text(max_size=8),
                            garbage, max_size=6))
def test_garbage_bodies_are_refused_or_sent_if_valid(body: dict[str, Any]) -> None:
    note(f"body {body!r:.1000}")
    harness = _harness()
    tally["garbage"] += 1
    valid = oracle_valid(body)
    if any(":" in v and not v.lower().startswith(("http://", "https://")) for v in _image_values(body)):
        # the prose rule (raw base64 or an http(s) URL) refuses it; the client reads the
        # images as it builds the body, so in an invalid body it may be what speaks first
        tally["garbage_refused"] += 1
        before = harness.sent
        with pytest.raises(ImageError if valid else (ImageError, RequestValidationError)):
            harness.client.create(body)
        assert harness.sent == before
        return
    if valid:
        tally["garbage_valid"] += 1
        harness.client.create(body)
        return
    tally["garbage_refused"] += 1
    refused(harness, body)


@hostile(60)
@given(request=st.sampled_from(NASTY) | st.lists(garbage, max_size=3) | st.text(max_size=5)
       | st.integers())
def test_a_request_that_is_not_an_object_is_refused_as_such(request: Any) -> None:
    """`create(request)` takes a generated model or a mapping; anything else is a TypeError
    or a RequestValidationError, not an AttributeError from deep inside."""
    note(f"request {request!r:.500}")
    harness = _harness()
    tally["garbage"] += 1
    if request is None or isinstance(request, dict):
        return  # None means "no request object"; dicts are the test above
    tally["garbage_refused"] += 1
    before = harness.sent
    with pytest.raises((TypeError, RequestValidationError)) as info:
        harness.client.create(request, image=URL_IMAGE, prompt="p")
    assert not isinstance(info.value, AttributeError)
    assert harness.sent == before


KEYWORD_FIELDS = sorted(set(request_schema()["properties"]) - set(_IMAGE_FIELDS))


@hostile(300)
@given(field=st.sampled_from(KEYWORD_FIELDS), value=garbage)
def test_garbage_keyword_arguments_are_refused_naming_the_field(field: str, value: Any) -> None:
    """The same through create()'s keyword arguments, which convert a few things first
    (an int duration to its string, enums to their values)."""
    note(f"{field}={value!r:.500}")
    harness = _harness()
    tally["garbage"] += 1
    if value is None:
        return  # None means "not given"
    before = harness.sent
    try:
        harness.client.create(**{"image": URL_IMAGE, "prompt": "p", field: value})
    except RequestValidationError as error:
        tally["garbage_refused"] += 1
        assert harness.sent == before
        assert _named(error, (field,)), f"{field} not named in {error}"
        return
    tally["garbage_valid"] += 1
    sent = json.loads(harness.transport.requests[-1].content)
    assert oracle_valid(sent), f"the client sent a body the spec does not allow: {sent!r:.300}"


# ============================================================================ x-image-rules


def _image_rule_keys() -> list[str]:
    return sorted(request_schema().get("x-image-rules", {}).keys() - {"description"})


def png(width: int, height: int, size: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    return data + b"\x00" * max(0, size - len(data))


def jpeg(width: int, height: int) -> bytes:
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\xff\xc0" + sof + b"\xff\xd9"


def test_the_image_rules_of_the_spec_are_all_known() -> None:
    assert set(_image_rule_keys()) <= {"formats", "max_bytes", "min_side", "max_aspect_ratio"}, (
        "x-image-rules has a rule this suite does not break: teach image_breaking()"
    )


@st.composite
def image_breaking(draw: st.DrawFn, rule: str) -> tuple[str, int, int, int]:
    """A recipe (not the bytes, which may be 10 MB: hypothesis prints what it draws)."""
    r = image_rules()
    side = r.min_side
    if rule == "min_side":
        small = draw(st.integers(1, side - 1))
        other = draw(st.integers(small, max(small, int(small * r.max_aspect_ratio))))
        w, h = draw(st.permutations([small, other]))
        return draw(st.sampled_from(["png", "jpeg"])), w, h, 0
    if rule == "max_aspect_ratio":
        short = draw(st.integers(side, 4 * side))
        long = int(short * r.max_aspect_ratio) + draw(st.integers(1, 3 * side))
        w, h = draw(st.permutations([short, long]))
        return draw(st.sampled_from(["png", "jpeg"])), w, h, 0
    if rule == "max_bytes":
        return "png", side, side, r.max_bytes + draw(st.integers(1, 4096))
    if rule == "formats":
        return f"other:{draw(st.integers(0, len(OTHER_FORMATS) - 1))}", 0, 0, draw(st.integers(0, 64))
    raise AssertionError(rule)


OTHER_FORMATS = [b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM", b"II*\x00", b"%PDF-1.4",
                 b"<svg xmlns='x'/>", b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\x00\x00\x01\x00"]


def build_image(recipe: tuple[str, int, int, int]) -> bytes:
    kind, w, h, size = recipe
    if kind == "png":
        return png(w, h, size)
    if kind == "jpeg":
        return jpeg(w, h)
    return OTHER_FORMATS[int(kind.split(":")[1])] + bytes(range(size % 256))[:size]


@pytest.mark.parametrize("rule", _image_rule_keys())
@hostile(15)
@given(data=st.data())
def test_images_breaking_each_image_rule_are_refused_naming_the_field(rule: str, data: st.DataObject) -> None:
    harness = _harness()
    image = build_image(data.draw(image_breaking(rule), label="image recipe"))
    field = data.draw(st.sampled_from(_IMAGE_FIELDS), label="field")
    fields: dict[str, Any] = {field: image, "prompt": "p"}
    if field == "static_mask":
        fields["image"] = URL_IMAGE
    tally["image"] += 1
    before = harness.sent
    with pytest.raises(ImageError) as info:
        harness.client.create(**fields)
    assert harness.sent == before
    tally["sent_invalid"] += harness.sent - before
    assert field in str(info.value), f"which field? {info.value}"


# ============================================================================ valid requests


@hostile(250)
@given(body=request_strategy())
def test_valid_requests_from_the_spec_pass_validation_and_go_out_unchanged(body: dict[str, Any]) -> None:
    from kling_i2v.testing.spec import violations as fake_gateway_violations
    from kling_i2v_api.models import ImageToVideoRequest

    note(f"body {body!r:.2000}")
    # openapi.yaml's prose (not its schema) says images are raw base64 or an http(s) URL,
    # and the client holds them to it (test_unsafe_targets): a value with a ":" must be one
    assume(not any(":" in v and not v.lower().startswith(("http://", "https://"))
                   for v in _image_values(body)))
    harness = _harness()
    tally["valid"] += 1
    original = copy.deepcopy(body)
    assert oracle_valid(body)
    assert violations(body) == []
    assert fake_gateway_violations(body) == []
    assert ImageToVideoRequest.from_dict(body).to_dict() == body
    before = harness.sent
    task = harness.client.create(body)
    assert harness.sent == before + 1
    sent = json.loads(harness.transport.requests[-1].content)
    assert sent == {"model_name": "kling-v2-master", **original, "external_task_id": task.external_task_id}
    assert body == original, "create() must not modify the caller's request"


def _image_values(body: dict[str, Any]) -> list[str]:
    values = [body[f] for f in _IMAGE_FIELDS if isinstance(body.get(f), str)]
    masks = body.get("dynamic_masks")  # any garbage in an invalid body
    values += [m["mask"] for m in (masks if isinstance(masks, list) else [])
               if isinstance(m, dict) and isinstance(m.get("mask"), str)]
    return values
