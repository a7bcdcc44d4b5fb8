"""Suite 2, malformed responses: for create, query and download, a scripted loopback
server answers with status codes, bodies and headers hypothesis picks (HTML, empty,
truncated JSON, wrong types, missing fields, unknown status strings, huge and deeply
nested bodies, NaN, broken encodings, resets, non-IANA codes like 520). Whatever comes,
the client returns a parsed result or raises one of its documented errors (a KlingError;
FileExistsError from download), never KeyError, AttributeError, TypeError, RecursionError
or an httpx exception.

Beyond "no crash", each answer is held to what a user relies on:
- an answer the spec allows (checked by jsonschema_rs against openapi.yaml) is parsed;
- a create is sent again only after an answer that certainly created nothing (429, or
  503 in the gateway's routing-error shape), always with the same external_task_id, and
  every error from a create carries that id;
- a failed download leaves neither the target nor a temporary file behind; a finished one
  holds exactly the bytes served;
- error messages stay short, whatever the size of the body.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from kling_i2v import (
    AmbiguousCreateError,
    APIError,
    AsyncKlingClient,
    KlingClient,
    KlingError,
    Task,
)
from kling_i2v.testing import AsyncSimulatedClock, SimulatedClock
from kling_i2v.validation import load_spec

from tests.conftest import load_data
from tests.hostile import figures
from tests.hostile.conftest import hostile
from tests.scripted_server import Reply, ScriptedServer

TOKEN = "sk-hostile-malformed-0002"
EXTERNAL_ID = "hostile-ext-0002"
URL_IMAGE = "https://example.com/cat.png"
MAX_RETRIES = 2

VALID = {
    "create": [load_data("reference_response.json") | {"status": "queued"}],
    "query": [load_data(n) for n in ("query_in_progress.json", "query_success.json", "query_failure.json")],
}

tally: Counter[str] = Counter()
outcomes: Counter[str] = Counter()
statuses_seen: set[int] = set()


class World:
    """One scripted server and one client for the module (hypothesis calls the test many
    times; fixtures are per test). Keep-alive is off, so a connection one answer broke
    (a 204 with a body, say) cannot leak into the next example."""

    def __init__(self) -> None:
        self.server = ScriptedServer()
        # a client that gives up on a broken answer resets the connection: not news here
        self.server._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.server.start()
        self.http = httpx.Client(
            base_url=self.server.base_url, timeout=httpx.Timeout(2.0),
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.client = KlingClient(TOKEN, base_url=self.server.base_url, max_retries=MAX_RETRIES,
                                  http_client=self.http, clock=SimulatedClock())

    def reset(self, replies: list[Reply]) -> None:
        self.server.replies.clear()
        self.server.seen.clear()
        self.server.script(*replies)

    def close(self) -> None:
        self.client.close()
        self.http.close()
        self.server.stop()


_world: list[World] = []


def world() -> World:
    if not _world:
        _world.append(World())
    return _world[0]


def scripted(script: list[Any]) -> World:
    """The world, its server set to answer with a drawn `script` of replies."""
    note(f"replies: {script!r:.3000}")
    w = world()
    w.reset([to_reply(*r) for r in script])
    statuses_seen.update(r[0] for r in script)
    return w


@pytest.fixture(scope="module", autouse=True)
def _lifecycle() -> Iterator[None]:
    yield
    if _world:
        _world.pop().close()
    figures.record("malformed_responses", {
        "cases_run": tally["cases"],
        "cases_by_call": {k: tally[k] for k in ("create", "query", "download", "async")},
        "replies_served": tally["replies"],
        "distinct_status_codes": len(statuses_seen),
        "outcomes": dict(sorted(outcomes.items())),
        "spec_valid_answers_parsed": tally["valid_parsed"],
        "creates_resent_after_an_answer_that_may_hide_a_task": tally["unsafe_resend"],
        "undocumented_exceptions": tally["undocumented"],
    })


# ============================================================================ what the server says

STATUS = st.one_of(
    st.sampled_from([200, 200, 200, 201, 202, 203, 204, 206, 299, 301, 302, 304, 307, 400, 401, 403,
                     404, 405, 409, 413, 418, 422, 429, 429, 451, 499, 500, 502, 503, 503, 504,
                     520, 521, 522, 524, 529, 599]),
    st.integers(200, 599),
)

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["", " ", "30%", "100%", "-5%", "1e400", "NaN", "SUCCESS", "succeed",
                              "FAILURE", "failed", "WEIRD_STATE", "queued", "\u0000", "\ud800"]))
json_garbage = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn, docs: list[Any]) -> Any:
    """A valid answer with one to three things broken: a field removed, replaced by a value
    of any type, or an unknown field added."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        op = draw(st.sampled_from(["delete", "replace", "replace", "add"]))
        if not path:
            if op == "replace":
                doc = draw(json_garbage)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if op == "delete":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(json_garbage)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_garbage)
    return doc


HTML = [
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
    b"<!DOCTYPE html><html><body>Cloudflare: Error 520 Web server is returning an unknown error</body></html>",
    b"<html><body>Just a moment... checking your browser</body></html>",
]


def _special(name: str) -> bytes:
    """Bodies too big or too odd to draw byte by byte (hypothesis prints what it draws)."""
    return {
        "deep_array": b"[" * 200_000 + b"]" * 200_000,
        "deep_object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "huge_string": b'{"task_id": "' + b"7" * 3_000_000 + b'", "code": "success"}',
        "huge_whitespace": b" " * 2_000_000 + b"{}",
        "huge_html": b"<html>" + b"<p>busy</p>" * 300_000 + b"</html>",
        "bom_json": b"\xef\xbb\xbf" + json.dumps(VALID["query"][0]).encode(),
        "utf16_json": json.dumps(VALID["query"][0]).encode("utf-16"),
        "two_documents": b'{"code": "success"}{"code": "success"}',
        "duplicate_keys": b'{"task_id": "1", "task_id": 5, "code": "success", "data": {"task_id": "1", "status": "QUEUED", "status": null}}',
        "nan_literals": b'{"code": "success", "data": {"task_id": "1", "status": "IN_PROGRESS", "progress": NaN, "submit_time": Infinity}, "task_id": "1", "progress": -Infinity}',
        "big_numbers": b'{"code": "success", "data": {"task_id": "1", "status": "SUCCESS", "submit_time": 1e999, "progress": 1e999, "data": {"code": 1e999, "data": {"created_at": 99999999999999999999999999999}}}, "task_id": "1", "progress": 1e999}',
        "invalid_utf8": b'{"code": "success", "data": {"task_id": "\xff\xfe", "status": "QUEUED"}}',
        "nul_bytes": b"\x00" * 64,
    }[name]


SPECIALS = ["deep_array", "deep_object", "huge_string", "huge_whitespace", "huge_html", "bom_json",
            "utf16_json", "two_documents", "duplicate_keys", "nan_literals", "big_numbers",
            "invalid_utf8", "nul_bytes"]


@st.composite
def body_for(draw: st.DrawFn, call: str) -> tuple[str, Any]:
    """(kind, recipe): the body is built from the recipe by `build_body`."""
    docs = VALID.get(call, VALID["create"] + VALID["query"])
    kind = draw(st.sampled_from(["valid", "mutated", "mutated", "mutated", "mutated", "garbage",
                                 "truncated", "html", "empty", "binary", "text", "special"]))
    if kind == "valid":
        return kind, draw(st.sampled_from(docs))
    if kind == "mutated":
        return kind, draw(mutated(docs))
    if kind == "garbage":
        return kind, draw(json_garbage)
    if kind == "truncated":
        text = json.dumps(draw(st.sampled_from(docs)))
        return kind, (text, draw(st.integers(0, len(text) - 1)))
    if kind == "html":
        return kind, draw(st.sampled_from(range(len(HTML))))
    if kind == "binary":
        return kind, draw(st.binary(max_size=64))
    if kind == "text":
        return kind, (draw(st.text(max_size=40)), draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])))
    if kind == "special":
        return kind, draw(st.sampled_from(SPECIALS))
    return kind, None


def build_body(kind: str, recipe: Any) -> bytes:
    if kind in ("valid", "mutated", "garbage"):
        return json.dumps(recipe, allow_nan=True).encode("utf-8", "surrogatepass")
    if kind == "truncated":
        text, cut = recipe
        return text[:cut].encode()
    if kind == "html":
        return HTML[recipe]
    if kind == "binary":
        return bytes(recipe)
    if kind == "text":
        text, encoding = recipe
        return text.encode(encoding, "replace")
    if kind == "special":
        return _special(recipe)
    return b""


HEADERS = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["text/html", "text/plain", "application/json; charset=bogus",
                                     "application/octet-stream", "video/mp4", "", "application/json; charset=utf-16"]),
    "Retry-After": st.sampled_from(["0", "1", "7", "-5", "1e400", "nan", "inf", "soon", "",
                                    "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT",
                                    "Wed, 21 Oct 2015 07:28:00 GMT", "86400000000"]),
    "X-Request-Id": st.sampled_from(["rid-1", "", "x" * 500, "\t"]),
    "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "zstd", "bogus", "identity", "gzip, gzip"]),
    "Content-Length": st.sampled_from(["0", "999999", "-1", "abc"]),
    # (a lying "chunked" makes the client wait for its timeout: one named case below)
    "Transfer-Encoding": st.sampled_from(["bogus", "identity"]),
})


@st.composite
def replies(draw: st.DrawFn, call: str) -> list[tuple[int, str, Any, dict[str, str], str | None]]:
    """An answer for every attempt the client may make: (status, kind, recipe, headers, action)."""
    out = []
    for _ in range(MAX_RETRIES + 1):
        status = draw(STATUS)
        kind, recipe = draw(body_for(call))
        headers = draw(HEADERS)
        if headers.get("Content-Encoding") in ("gzip", "deflate") and draw(st.booleans()):
            headers["X-Hostile-Encode"] = headers["Content-Encoding"]  # encode it properly
        action = draw(st.sampled_from([None] * 12 + ["reset"]))
        out.append((status, kind, recipe, headers, action))
    return out


def to_reply(status: int, kind: str, recipe: Any, headers: dict[str, str], action: str | None) -> Reply:
    body = build_body(kind, recipe)
    headers = dict(headers)
    encode = headers.pop("X-Hostile-Encode", None)
    if encode == "gzip":
        body = gzip.compress(body)
    elif encode == "deflate":
        body = zlib.compress(body)
    return Reply(status, body, headers, action)


# ============================================================================ judging the outcome


@functools.cache
def _judge(component: str) -> Any:
    import jsonschema_rs

    root = {"$ref": f"#/components/schemas/{component}", "components": load_spec()["components"]}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def spec_valid(component: str, body: bytes) -> bool:
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject)
    except (ValueError, RecursionError):
        return False
    try:
        return bool(_judge(component).is_valid(data))
    except (ValueError, OverflowError):
        return False


def _reject(name: str) -> Any:
    raise ValueError(name)


def clean_wire(reply: tuple[int, str, Any, dict[str, str], str | None]) -> bool:
    """An answer the HTTP layer delivers as sent: no reset, no lying headers, a body."""
    status, _, _, headers, action = reply
    if action is not None or status in (204, 205, 304):
        return False
    if {"Content-Length", "Transfer-Encoding"} & set(headers):
        return False
    encoding = headers.get("Content-Encoding")
    if encoding in ("gzip", "deflate"):
        return headers.get("X-Hostile-Encode") == encoding
    return encoding in (None, "identity", "bogus")


def certainly_created_nothing(reply: tuple[int, str, Any, dict[str, str], str | None]) -> bool:
    """The answers after which the client may send a create again."""
    status, kind, recipe, _, action = reply
    if action is not None:
        return False
    if status == 429:
        return True
    if status != 503:
        return False
    try:
        data = json.loads(build_body(kind, recipe))
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and isinstance(data.get("error"), dict)


def check_error(error: BaseException, allowed: tuple[type[BaseException], ...] = (KlingError,)) -> str:
    """The error must be documented, printable and short; returns its class name."""
    if not isinstance(error, allowed):
        tally["undocumented"] += 1
        raise AssertionError(  # noqa: TRY004 - a failed expectation, not a bad argument
            f"undocumented exception {type(error).__module__}.{type(error).__name__}: {str(error)[:300]}"
        ) from error
    text, shown = str(error), repr(error)
    assert len(text) < 4000 and len(shown) < 8000, f"a {len(text)}-character message"
    return type(error).__name__


def record(call: str, outcome: str, replies_used: int) -> None:
    tally["cases"] += 1
    tally[call] += 1
    tally["replies"] += replies_used
    outcomes[f"{call}:{outcome}"] += 1


# ============================================================================ create


@hostile(300)
@given(script=replies("create"))
def test_create_answers_are_parsed_or_documented_errors_and_never_paid_twice(script: list[Any]) -> None:
    w = scripted(script)
    try:
        task = w.client.create(image=URL_IMAGE, prompt="p", external_task_id=EXTERNAL_ID)
        outcome = "Task"
    except BaseException as error:  # noqa: BLE001 - judging exactly what comes out is the point
        outcome = check_error(error)
        task = None
        if isinstance(error, APIError):
            assert error.external_task_id == EXTERNAL_ID, "a create error must carry the id to look for"
    posts = w.server.requests_to("POST")
    used = len(posts)
    assert 1 <= used <= MAX_RETRIES + 1
    assert {p.json()["external_task_id"] for p in posts} == {EXTERNAL_ID}
    for previous in script[: used - 1]:
        if not certainly_created_nothing(previous):
            tally["unsafe_resend"] += 1
            raise AssertionError(f"create sent again after {previous[0]} {previous[1]}: could pay twice")
    last = script[used - 1]
    if task is not None:
        assert 200 <= last[0] < 300
        assert task.external_task_id == EXTERNAL_ID
        assert isinstance(task.task_id, str) and task.task_id.strip()
    elif 200 <= last[0] < 300 and last[4] is None:
        assert outcome == "AmbiguousCreateError", "a 2xx whose answer is lost is the ambiguous case"
    if (clean_wire(last) and 200 <= last[0] < 300
            and spec_valid("VideoTask", build_body(last[1], last[2]))
            and json.loads(build_body(last[1], last[2]))["task_id"].strip()):
        assert task is not None, "an answer the spec allows must be parsed"
        tally["valid_parsed"] += 1
    record("create", outcome, used)


# ============================================================================ query


@hostile(300)
@given(script=replies("query"))
def test_query_answers_are_parsed_or_documented_errors(script: list[Any]) -> None:
    w = scripted(script)
    try:
        task = w.client.get("860260753860210752")
        outcome = "Task"
    except BaseException as error:  # noqa: BLE001
        outcome = check_error(error)
        task = None
    used = len(w.server.requests_to("GET"))
    assert 1 <= used <= MAX_RETRIES + 1
    last = script[used - 1]
    if task is not None:
        assert isinstance(task, Task)
        assert 200 <= last[0] < 300
        assert 0 <= task.progress <= 100
        assert all(isinstance(u, str) and u for u in task.video_urls)
        str(task), repr(task)
    if clean_wire(last) and 200 <= last[0] < 300 and spec_valid("TaskQueryResponse", build_body(last[1], last[2])):
        data = json.loads(build_body(last[1], last[2]))["data"]
        if data["task_id"].strip():
            assert task is not None, "an answer the spec allows must be parsed"
            assert task.task_id == data["task_id"]
            tally["valid_parsed"] += 1
    record("query", outcome, used)


# ============================================================================ download


@hostile(200)
@given(script=replies("download"), exists=st.booleans(), overwrite=st.booleans())
def test_downloads_end_complete_or_leave_nothing_behind(
    script: list[Any], exists: bool, overwrite: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    w = scripted(script)
    folder = tmp_path_factory.mktemp("dl")
    target = folder / "video.mp4"
    if exists:
        target.write_bytes(b"mine")
    try:
        written: Path | None = w.client.download(w.server.base_url + "/files/v.mp4", target,
                                                 overwrite=overwrite)
        outcome = "Path"
    except BaseException as error:  # noqa: BLE001
        outcome = check_error(error, (KlingError, FileExistsError))
        written = None
        if isinstance(error, FileExistsError):
            assert exists and not overwrite
    leftovers = [p.name for p in folder.iterdir() if p.name != "video.mp4"]
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    used = len(w.server.requests_to("GET"))
    if written is not None:
        assert written == target
        last = script[used - 1]
        assert 200 <= last[0] < 300
        if clean_wire(last) and "Content-Encoding" not in last[3]:
            assert target.read_bytes() == build_body(last[1], last[2])
    elif exists:
        assert target.read_bytes() == b"mine", "a failed download must not touch the existing file"
    else:
        assert not target.exists(), "a failed download must not leave a partial file"
    record("download", outcome, used)


# ============================================================================ async, briefly


@hostile(60)
@given(call=st.sampled_from(["create", "query"]), data=st.data())
def test_the_async_client_judges_answers_the_same_way(call: str, data: st.DataObject) -> None:
    script = data.draw(replies(call), label="replies")
    w = world()
    w.reset([to_reply(*r) for r in script])

    async def run() -> str:
        async with httpx.AsyncClient(base_url=w.server.base_url, timeout=5.0,
                                     limits=httpx.Limits(max_keepalive_connections=0)) as http:
            client = AsyncKlingClient(TOKEN, base_url=w.server.base_url, max_retries=MAX_RETRIES,
                                      http_client=http, clock=AsyncSimulatedClock())
            try:
                if call == "create":
                    await client.create(image=URL_IMAGE, prompt="p", external_task_id=EXTERNAL_ID)
                else:
                    await client.get("1")
            except BaseException as error:  # noqa: BLE001
                return check_error(error)
            return "Task"

    outcome = asyncio.run(run())
    record("async", outcome, len(w.server.seen))


# ============================================================================ named cases


@pytest.mark.parametrize(("status", "headers"), [(100, {}), (101, {}), (103, {}),
                                                 (200, {"Transfer-Encoding": "chunked"})])
def test_answers_that_never_end_are_a_documented_error(status: int, headers: dict[str, str]) -> None:
    w = world()
    w.reset([Reply(status, b'{"task_id": "1"}', headers)] * (MAX_RETRIES + 1))
    http = httpx.Client(base_url=w.server.base_url, timeout=0.3)
    with (KlingClient(TOKEN, base_url=w.server.base_url, max_retries=0, http_client=http) as client,
          pytest.raises(KlingError) as info):
        client.create(image=URL_IMAGE, prompt="p", external_task_id=EXTERNAL_ID)
    http.close()
    assert isinstance(info.value, AmbiguousCreateError)
    record("create", type(info.value).__name__, 1)


def test_a_connection_poisoned_by_a_204_with_a_body_does_not_break_the_client() -> None:
    """A 204 must not carry a body; a server that sends one leaves bytes on the kept-alive
    connection, and the next answer read there is garbage."""
    w = world()
    w.reset([Reply(204, b'{"code": "success"}'), Reply(200, VALID["query"][0]),
             Reply(200, VALID["query"][0]), Reply(200, VALID["query"][0])])
    with KlingClient(TOKEN, base_url=w.server.base_url, max_retries=MAX_RETRIES, clock=SimulatedClock()) as client:
        for _ in range(2):
            try:
                client.get("1")
                outcome = "Task"
            except BaseException as error:  # noqa: BLE001
                outcome = check_error(error)
            record("query", outcome, 1)


# answers each of which once broke the client: checked on every call, whatever hypothesis draws
NAMED: dict[str, Reply] = {
    "gzip header on a plain body": Reply(200, json.dumps(VALID["query"][0]), {"Content-Encoding": "gzip"}),
    "deflate header on a plain body": Reply(200, b'{"task_id": "1"}', {"Content-Encoding": "deflate"}),
    "error page in utf-16 without a BOM": Reply(500, b"<html>oops</html>",
                                                {"Content-Type": "text/html; charset=utf-16"}),
    "200 in utf-16 without a BOM": Reply(200, b"<html>oops</html>", {"Content-Type": "text/plain; charset=utf-16"}),
    "deeply nested 200": Reply(200, _special("deep_array")),
    "deeply nested error body": Reply(500, _special("deep_object")),
    "Infinity and NaN": Reply(200, _special("nan_literals")),
    "1e999 everywhere": Reply(200, _special("big_numbers")),
    "invalid UTF-8": Reply(200, _special("invalid_utf8")),
    "HTML 200": Reply(200, HTML[2], {"Content-Type": "text/html"}),
    "empty 200": Reply(200, b""),
    "truncated JSON": Reply(200, json.dumps(VALID["query"][1])[:57]),
    "520 empty": Reply(520, b"", {"Content-Type": "text/plain"}),
    "429 with a nonsense Retry-After": Reply(429, b"{}", {"Retry-After": "1e400"}),
    "huge body": Reply(200, _special("huge_string")),
}


@pytest.mark.parametrize("call", ["create", "query", "download"])
@pytest.mark.parametrize("name", list(NAMED))
def test_named_hostile_answers_are_parsed_or_documented_errors(name: str, call: str, tmp_path: Path) -> None:
    w = world()
    w.reset([NAMED[name]] * (MAX_RETRIES + 1))
    target = tmp_path / "v.mp4"
    try:
        if call == "create":
            w.client.create(image=URL_IMAGE, prompt="p", external_task_id=EXTERNAL_ID)
        elif call == "query":
            w.client.get("1")
        else:
            w.client.download(w.server.base_url + "/files/v.mp4", target)
        outcome = "Task" if call != "download" else "Path"
    except BaseException as error:  # noqa: BLE001
        outcome = check_error(error)
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "v.mp4"] == []
    record(call, outcome, len(w.server.seen))
