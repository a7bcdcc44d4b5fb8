"""Streamed request bodies over real HTTP on loopback: what reaches the socket is exactly
the JSON httpx's `json=` would send, with a Content-Length and no chunked encoding, the
image never held whole, every attempt sent whole, and a file that changes after its
check never sent complete."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kling_i2v import AsyncKlingClient, Image, ImageError, KlingClient, RetryPolicy
from kling_i2v.body import RequestBody, StreamedJSON
from kling_i2v.requests import build_request_body
from kling_i2v.testing import AsyncSimulatedClock, SimulatedClock

from tests.conftest import load_data
from tests.imagegen import make_jpeg, make_png
from tests.scripted_server import Reply, ScriptedServer, read_head, scripted_server

TOKEN = "sk-canary-7f3a9c0d1e2b"
CREATED = load_data("reference_response.json") | {"status": "queued"}
MIB = 1024 * 1024


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


def local(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def as_httpx_json_would(fields: dict[str, Any]) -> bytes:
    """What httpx's `json=` sends for `fields` (the naive body, made by httpx itself)."""
    return httpx.Request("POST", "http://x/", json=fields).content


# --------------------------------------------------------------------- on the wire


def test_a_local_image_is_streamed_with_an_exact_content_length(
    server: ScriptedServer, tmp_path: Path
) -> None:
    data = make_jpeg(1200, 900, pad_to=MIB + 7)
    path = local(tmp_path, "cat.jpg", data)
    server.script(Reply(200, CREATED))
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        kling.create(image=path, prompt="the cat jumps", mode="pro", duration=10)
    (seen,) = server.seen
    assert "transfer-encoding" not in seen.headers
    assert int(seen.headers["content-length"]) == len(seen.body)
    assert seen.headers["content-type"] == "application/json"
    sent = seen.json()
    assert base64.b64decode(sent["image"], validate=True) == data
    # Byte for byte what the naive build (whole base64 str, httpx json=) would send.
    assert seen.body == as_httpx_json_would(sent)
    assert (sent["prompt"], sent["mode"], sent["duration"]) == ("the cat jumps", "pro", "10")


def test_several_images_and_masks_each_land_in_their_field(server: ScriptedServer, tmp_path: Path) -> None:
    first, last = make_jpeg(800, 600, pad_to=300_001), make_png(800, 600)
    mask = make_png(800, 600)
    (tmp_path / "a.jpg").write_bytes(first)
    server.script(Reply(200, CREATED))
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        kling.create(
            image=tmp_path / "a.jpg", prompt="p",
            dynamic_masks=[{"mask": mask, "trajectories": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}],
        )
    sent = server.seen[0].json()
    assert base64.b64decode(sent["image"]) == first
    assert base64.b64decode(sent["dynamic_masks"][0]["mask"]) == mask
    assert server.seen[0].body == as_httpx_json_would(sent)
    server.script(Reply(200, CREATED))
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        kling.create(image=Image.from_bytes(first), image_tail=last, prompt="p")
    sent = server.seen[1].json()
    assert base64.b64decode(sent["image"]) == first
    assert base64.b64decode(sent["image_tail"]) == last


def test_the_async_client_streams_the_same_body(server: ScriptedServer, tmp_path: Path) -> None:
    data = make_png(640, 480)
    path = local(tmp_path, "cat.png", data)
    server.script(Reply(200, CREATED))

    async def main() -> None:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url) as kling:
            await kling.create(image=str(path), prompt="p", external_task_id="ext-1")

    asyncio.run(main())
    (seen,) = server.seen
    assert "transfer-encoding" not in seen.headers
    assert int(seen.headers["content-length"]) == len(seen.body)
    assert base64.b64decode(seen.json()["image"]) == data
    assert seen.json()["external_task_id"] == "ext-1"


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_a_retried_create_sends_the_whole_body_again(
    server: ScriptedServer, tmp_path: Path, client_kind: str
) -> None:
    # 429 from the gateway: nothing was created, so the create goes again, and the
    # second attempt must carry the image from its first byte (a factory, not a
    # generator that the first attempt used up).
    data = make_jpeg(900, 600, pad_to=700_000)
    path = local(tmp_path, "cat.jpg", data)
    rate_limited = Reply(429, {"error": {"message": "busy", "type": "new_api_error", "code": "x"}})
    server.script(rate_limited, Reply(200, CREATED))
    policy = RetryPolicy(max_retries=2)
    if client_kind == "sync":
        with KlingClient(TOKEN, base_url=server.base_url, retry=policy, clock=SimulatedClock()) as kling:
            kling.create(image=path, prompt="p")
    else:
        async def main() -> None:
            async with AsyncKlingClient(TOKEN, base_url=server.base_url, retry=policy,
                                        clock=AsyncSimulatedClock()) as kling:
                await kling.create(image=path, prompt="p")

        asyncio.run(main())
    first, second = server.seen
    assert first.body == second.body
    assert base64.b64decode(second.json()["image"]) == data


def test_bytes_are_streamed_without_a_copy(server: ScriptedServer) -> None:
    data = make_jpeg(800, 800, pad_to=2 * MIB)
    image = Image.from_bytes(data)
    body = build_request_body(None, {"image": image, "prompt": "p"})
    (held,) = body.images.values()
    assert held._data is data  # the caller's bytes, not a copy
    server.script(Reply(200, CREATED))
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        kling.create(body)
    assert base64.b64decode(server.seen[0].json()["image"]) == data


# --------------------------------------------------------------------- a file that changes


@pytest.mark.parametrize("change", ["rewritten", "grown", "truncated"])
def test_a_file_changed_between_check_and_send_is_an_image_error_and_never_a_whole_body(
    server: ScriptedServer, tmp_path: Path, change: str
) -> None:
    data = make_jpeg(1000, 800, pad_to=600_000)
    path = local(tmp_path, "cat.jpg", data)

    def edit(request: httpx.Request) -> None:  # after the check, before the body is sent
        if change == "rewritten":
            path.write_bytes(data[:-1] + b"\x00")
        elif change == "grown":
            path.write_bytes(data + b"\x00" * 1000)
        else:
            path.write_bytes(data[:1000])

    server.script(Reply(200, CREATED))
    http = httpx.Client(base_url=server.base_url, event_hooks={"request": [edit]})
    with KlingClient(TOKEN, base_url=server.base_url, http_client=http) as kling, \
            pytest.raises(ImageError, match=r"cat\.jpg: must not change after it was checked"):
        kling.create(image=path, prompt="p")
    http.close()
    deadline = time.monotonic() + 5
    while not server.seen and time.monotonic() < deadline:
        time.sleep(0.01)
    for seen in server.seen:  # the server got the headers, then a cut body
        assert len(seen.body) < int(seen.headers["content-length"])
        with pytest.raises(ValueError):
            json.loads(seen.body)


# --------------------------------------------------------------------- memory


class _CountingServer:
    """Answers every POST with a created task; keeps only the CRC and length of each body
    (read into one reused buffer), so tracemalloc in this process sees the client alone."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.bodies: list[tuple[int, int]] = []
        self.reply = json.dumps(CREATED).encode()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        buf = bytearray(1 << 16)
        view = memoryview(buf)
        conn, _ = self.sock.accept()
        with conn:
            while True:
                request = read_head(conn, chunk=4096)  # small reads: this process is measured
                if request is None:
                    return
                _, headers, rest = request
                length = int(headers["content-length"])
                crc, got = zlib.crc32(rest), len(rest)
                while got < length:
                    n = conn.recv_into(view, min(len(buf), length - got))
                    if not n:
                        return
                    crc = zlib.crc32(view[:n], crc)
                    got += n
                self.bodies.append((got, crc))
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(self.reply)).encode() + b"\r\n\r\n"
                             + self.reply)

    def close(self) -> None:
        self.sock.close()


def test_a_create_with_a_4_mb_image_holds_under_a_mebibyte(tmp_path: Path) -> None:
    # The naive body (read, b64encode, str, json.dumps, encode) holds ~5.3x the file:
    # 21 MB here. Streamed, the whole create() stays under 1 MiB.
    size = 4 * MIB
    data = make_jpeg(2000, 1500, pad_to=size)
    path = local(tmp_path, "big.jpg", data)
    server = _CountingServer()
    try:
        with KlingClient(TOKEN, base_url=server.base_url) as kling:
            kling.create(image="https://example.com/warm.jpg", prompt="p")  # imports, pool
            tracemalloc.start()
            try:
                start, _ = tracemalloc.get_traced_memory()
                kling.create(image=path, prompt="p", external_task_id="ext-mem")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        server.close()
    # The same create through a mock transport, which holds the body whole: the socket got
    # exactly the naive body's bytes.
    caught: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        caught.append(request.read())
        return httpx.Response(200, json=CREATED)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1")
    with KlingClient(TOKEN, base_url="http://127.0.0.1", http_client=http) as kling:
        kling.create(image=path, prompt="p", external_task_id="ext-mem")
    http.close()
    (expected,) = caught
    assert expected == as_httpx_json_would(json.loads(expected))
    assert base64.b64decode(json.loads(expected)["image"]) == data
    assert server.bodies[-1] == (len(expected), zlib.crc32(expected))
    assert peak - start < MIB, f"{(peak - start) / MIB:.2f} MiB"


# --------------------------------------------------------------------- the body object


def test_the_body_validates_placeholders_of_the_right_kind(tmp_path: Path) -> None:
    jpeg, png = make_jpeg(800, 600), make_png(800, 600)
    body = build_request_body(None, {"image": jpeg, "image_tail": png, "prompt": "p"})
    assert isinstance(body, RequestBody)
    stand_ins = {body.fields["image"], body.fields["image_tail"]}
    assert stand_ins == set(body.images)
    assert body.fields["image"].startswith("/9j/")  # base64 of FF D8 FF
    assert body.fields["image_tail"].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    for text in stand_ins:
        base64.b64decode(text, validate=True)
    whole = body.to_dict()
    assert base64.b64decode(whole["image"]) == jpeg
    assert base64.b64decode(whole["image_tail"]) == png


def test_a_url_only_body_is_plain_bytes() -> None:
    body = build_request_body(None, {"image": "https://example.com/a.jpg", "prompt": "p"})
    encoded = body.encode()
    assert isinstance(encoded.content, bytes)
    assert encoded.content == as_httpx_json_would(body.fields)
    assert encoded.headers["Content-Length"] == str(len(encoded.content))


def test_a_field_replacing_a_built_bodys_image_drops_that_image() -> None:
    built = build_request_body(None, {"image": make_jpeg(800, 600), "prompt": "p"})
    again = build_request_body(built, {"image": "https://example.com/b.jpg"})
    assert again.images == {}
    assert again.fields["image"] == "https://example.com/b.jpg"
    assert again.fields["external_task_id"] == built.fields["external_task_id"]


def test_content_length_is_exact_at_every_size() -> None:
    for pad in (0, 1, 2, 3, 196_607, 196_608, 196_609):
        data = make_jpeg(400, 400, pad_to=len(make_jpeg(400, 400)) + pad)
        encoded = build_request_body(None, {"image": data, "prompt": "é ✓"}).encode()
        assert isinstance(encoded, StreamedJSON)
        whole = b"".join(encoded)
        assert len(whole) == encoded.content_length
        assert base64.b64decode(json.loads(whole)["image"]) == data


def test_fields_can_be_read_but_the_body_is_no_mapping() -> None:
    body = build_request_body(None, {"image": make_jpeg(800, 600), "prompt": "p",
                                     "external_task_id": "ext-9"})
    assert body["external_task_id"] == "ext-9" == body.external_task_id
    assert body["prompt"] == "p"
    # dict(body) would carry the placeholder, not the image: refused, not silently wrong
    with pytest.raises(TypeError):
        dict(body)  # type: ignore[call-overload]
