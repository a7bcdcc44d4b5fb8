"""The direct send path (kling_i2v._send): a client's own pool gets requests beneath
httpx.Client.send. Pinned here, over real loopback sockets: the bytes on the wire are the
ones httpx.Client.send writes, the token goes only where BearerAuth puts it, the
environment's proxies still apply, a closed client sends nothing, cookies are not kept,
and the pinned httpx does take this path (else the speed-up is silently gone)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kling_i2v import AsyncKlingClient, ConfigurationError, DeadlineExceededError, KlingClient

from tests.both_clients import Blocking
from tests.imagegen import make_jpeg

TOKEN = "sk-send-test"
TASK = "880000000000000001"
SAMPLE_MP4 = (Path(__file__).parents[1] / "overlays" / "kling_i2v" / "testing" / "assets"
              / "sample.mp4").read_bytes()


class RawServer:
    """Records every request exactly as it came off the socket (head and body) and
    answers a create, a query (whose video is on this server) or a video."""

    def __init__(self, *, extra_headers: bytes = b"") -> None:
        self.seen: list[bytes] = []
        self.extra = extra_headers
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                self.seen.append(head + b"\r\n\r\n" + body)
                conn.sendall(self._answer(head.split(b" ")[0:2]))

    def _answer(self, line: list[bytes]) -> bytes:
        method, target = line
        if target == b"/go":  # a video host's redirect, with a user:password in its URL
            return (b"HTTP/1.1 302 Found\r\nlocation: http://user:p%40ss@127.0.0.1:"
                    + str(self.port).encode() + b"/files/" + TASK.encode() + b".mp4\r\n"
                    + b"content-length: 0\r\n\r\n")
        if target.endswith(b".mp4"):
            return _reply(SAMPLE_MP4, b"video/mp4")
        if method == b"POST":
            return _reply(json.dumps({"task_id": TASK, "status": "queued", "progress": 0,
                                      "created_at": 1767225600}).encode(), extra=self.extra)
        return _reply(json.dumps({"code": "success", "message": "", "data": {
            "task_id": TASK, "status": "SUCCESS", "progress": "100%", "fail_reason": "",
            "data": {"data": {"task_id": TASK, "task_result": {"videos": [
                {"id": "v", "url": f"{self.base_url}/files/{TASK}.mp4", "duration": "5"}]}}},
        }}).encode())

    def close(self) -> None:
        self._sock.close()


def _reply(body: bytes, content_type: bytes = b"application/json", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


@pytest.fixture
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.close()


def _every_call(kling: Any, tmp_path: Path, image: Path) -> None:
    kling.create(image="https://example.com/cat.jpg", prompt="a cat", external_task_id="x-1")
    kling.create(image=image, prompt="a cat", external_task_id="x-2")  # a streamed body
    done = kling.get(TASK)
    kling.download(done, tmp_path / "v.mp4", overwrite=True)
    kling.download(f"{kling.base_url}/go", tmp_path / "w.mp4", overwrite=True)  # a redirect


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_direct_path_writes_what_httpx_client_send_writes(kind: str, server: RawServer,
                                                              tmp_path: Path) -> None:
    image = tmp_path / "cat.jpg"
    image.write_bytes(make_jpeg(400, 300, pad_to=300_000))  # over one 192 KiB chunk
    if kind == "sync":
        kling: Any = KlingClient(TOKEN, base_url=server.base_url)
    else:
        runner = asyncio.Runner()
        kling = Blocking(AsyncKlingClient(TOKEN, base_url=server.base_url), runner)
    with kling:
        assert kling._direct is not None
        _every_call(kling, tmp_path, image)
        direct = list(server.seen)
        server.seen.clear()
        (kling.client if kind == "async" else kling)._direct = None  # through Client.send
        _every_call(kling, tmp_path, image)
        through_send = list(server.seen)
    if kind == "async":
        runner.close()
    assert len(direct) == 6 and direct == through_send
    assert direct[0].startswith(b"POST /kling/v1/videos/image2video HTTP/1.1\r\n")
    assert f"Authorization: Bearer {TOKEN}".encode() in direct[2]  # the query
    assert len(direct[1]) > 400_000  # the whole image, in base64
    # the redirect hop: no token, the URL's user:password as Basic auth (httpx's rule)
    assert b"Bearer" not in direct[5] and b"Authorization: Basic dXNlcjpwQHNz" in direct[5]


def test_the_pinned_httpx_takes_the_direct_path_on_both_clients(server: RawServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("httpx.Client.send was used")

    monkeypatch.setattr(httpx.Client, "send", refuse)
    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        assert kling.create(image="https://example.com/cat.jpg", prompt="a cat").task_id == TASK

    async def run() -> str:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url) as kling:
            return (await kling.get(TASK)).task_id

    assert asyncio.run(run()) == TASK
    assert len(server.seen) == 2


def test_a_client_the_user_gives_keeps_its_own_layers(server: RawServer) -> None:
    hooked: list[str] = []
    given = httpx.Client(base_url=server.base_url,
                         event_hooks={"request": [lambda r: hooked.append(r.method)]})
    with KlingClient(TOKEN, base_url=server.base_url, http_client=given) as kling:
        assert kling._direct is None
        kling.create(image="https://example.com/cat.jpg", prompt="a cat")
    given.close()
    assert hooked == ["POST"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_environment_proxies_apply_to_both_clients(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is honoured as by any httpx client; the sync client's proxy pool keeps
    the call's deadline on its sockets (_wire.use_deadlines)."""
    proxy = RawServer()  # answers like the gateway, and sees the proxy's request line
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        if kind == "sync":
            with KlingClient(TOKEN, base_url="http://127.0.0.1:9") as kling:  # nothing on 9
                assert kling._direct is not None
                task_id = kling.get(TASK).task_id
        else:
            async def run() -> str:
                async with AsyncKlingClient(TOKEN, base_url="http://127.0.0.1:9") as kling:
                    assert kling._direct is not None
                    return (await kling.get(TASK)).task_id

            task_id = asyncio.run(run())
    finally:
        proxy.close()
    assert task_id == TASK
    assert proxy.seen[0].startswith(f"GET http://127.0.0.1:9/kling/v1/videos/image2video/{TASK} ".encode())


def test_a_trickling_proxy_does_not_outlast_the_calls_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy that trickles its answer's headers, a sync call still ends by its
    deadline (the proxy pool has the deadline-aware sockets, _wire.use_deadlines); httpx's
    per-read timeouts alone never fire, each byte comes in time."""
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def trickle() -> None:  # a header byte every 0.1 s: each read is quick, the answer never ends
        conn = silent.accept()[0]
        held.append(conn)
        conn.recv(65536)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(150):
                time.sleep(0.1)
                conn.sendall(b"a")
        except OSError:
            pass  # the client hung up: what the deadline is for

    threading.Thread(target=trickle, daemon=True).start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    outcome: list[BaseException] = []

    def call() -> None:
        with KlingClient(TOKEN, base_url="http://127.0.0.1:9", max_retries=0) as kling:
            try:
                kling.get(TASK, timeout=0.5)
            except BaseException as exc:  # noqa: BLE001 - what it raised is asserted below
                outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(15)
    silent.close()
    assert not worker.is_alive(), "the call outlived its 0.5 s deadline by 15 s"
    assert len(outcome) == 1 and isinstance(outcome[0], DeadlineExceededError)
    assert held, "the request went to the proxy"


def test_a_closed_client_sends_nothing(server: RawServer) -> None:
    kling = KlingClient(TOKEN, base_url=server.base_url)
    kling.close()
    with pytest.raises(ConfigurationError, match="the client is closed"):
        kling.create(image="https://example.com/cat.jpg", prompt="a cat")
    assert server.seen == []


def test_cookies_a_server_sets_are_not_sent_back() -> None:
    server = RawServer(extra_headers=b"set-cookie: tracker=abc; Path=/\r\n")
    try:
        with KlingClient(TOKEN, base_url=server.base_url) as kling:
            kling.create(image="https://example.com/cat.jpg", prompt="a cat")
            kling.get(TASK)
    finally:
        server.close()
    assert b"tracker" not in server.seen[1].lower()
    assert b"cookie" not in server.seen[1].lower()


def test_httpx_request_log_line_is_kept(server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="httpx"), KlingClient(TOKEN, base_url=server.base_url) as kling:
        kling.get(TASK)
    assert [r.getMessage() for r in caplog.records if r.name == "httpx"] == [
        f'HTTP Request: GET {server.base_url}/kling/v1/videos/image2video/{TASK} "HTTP/1.1 200 OK"']


def test_every_generated_request_is_one_the_direct_path_carries_whole() -> None:
    import importlib
    import pkgutil

    import kling_i2v_api.api.image2video as endpoints
    from kling_i2v._send import _KNOWN_ARGS

    made = []
    for info in pkgutil.iter_modules(endpoints.__path__):
        build = importlib.import_module(f"{endpoints.__name__}.{info.name}").build_request
        kwargs = build(body={"prompt": "p"}) if "body" in build.__code__.co_varnames else build(task_id="1")
        assert set(kwargs) <= _KNOWN_ARGS, f"{info.name} makes {sorted(set(kwargs) - _KNOWN_ARGS)}"
        made.append(info.name)
    assert sorted(made) == ["create_image_to_video", "get_image_to_video_task"]


def test_an_argument_the_direct_path_cannot_carry_is_refused_not_dropped(server: RawServer) -> None:
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        assert kling._direct is not None
        with pytest.raises(TypeError, match="cookies"):
            kling._direct.build({"method": "GET", "url": "/x", "cookies": {"a": "b"}}, None,
                                httpx.Timeout(5.0), anonymous=False)
