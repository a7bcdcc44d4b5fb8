"""The clients' connection pool (`kling_i2v._pool`), over real loopback HTTP.

Issue 12: at 256 concurrent creates both our client and raw httpx opened 259-284 TCP
connections per round and ran at ~85 creates/s. httpcore's assignment pass, run at every
request start and end, asked every connection's state once per idle connection (quadratic
in the pool's size) and handed one idle connection to every queued request; the client
stalled for seconds in its own bookkeeping, its fresh connections idled past the keep-alive
and were reopened. These tests count the pool's work instead of timing it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import httpcore
import httpx
import pytest
from kling_i2v import AsyncKlingClient, KlingClient

from tests.conftest import load_data
from tests.scripted_server import Reply, ScriptedServer, read_head, scripted_server

TOKEN = "sk-canary-7f3a9c0d1e2b"
URL_IMAGE = "https://example.com/cat.png"
CREATED = load_data("reference_response.json") | {"status": "queued"}
STATE_QUERIES = ("is_idle", "is_available", "has_expired", "is_closed", "can_handle_request")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


@contextmanager
def counting_state_queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts how often the pool asks a connection for its state (both clients' classes)."""
    counts: Counter[str] = Counter()
    for cls in (httpcore.HTTPConnection, httpcore.AsyncHTTPConnection):
        for name in STATE_QUERIES:
            original = getattr(cls, name)

            def counted(self: Any, *args: Any, _original: Callable[..., Any] = original,
                        _name: str = name) -> Any:
                counts[_name] += 1
                return _original(self, *args)

            monkeypatch.setattr(cls, name, counted)
    yield counts


def _two_bursts(server: ScriptedServer, size: int, *, threads: bool,
                between: Callable[[], None] = lambda: None, action: str | None = None) -> set[int]:
    """Two bursts of 4 x `size` concurrent creates through a client with a pool of `size`,
    each with a call deadline (the deadline machinery must hand connections back to the
    pool, not close them); `between` runs after the first (the pool then holds `size` idle
    connections), `action` is the server's per reply. The TCP connections the server saw,
    by the client's source port."""
    creates = 4 * size
    server.listen(backlog=4 * size)
    server.script(*[Reply(200, CREATED, action=action)] * (2 * creates))
    if threads:
        with KlingClient(TOKEN, base_url=server.base_url, max_connections=size) as client, \
                ThreadPoolExecutor(max_workers=2 * size) as pool:
            for burst in range(2):
                if burst:
                    between()
                list(pool.map(lambda _: client.create(image=URL_IMAGE, prompt="p", timeout=60),
                              range(creates)))
    else:
        async def main() -> None:
            async with AsyncKlingClient(TOKEN, base_url=server.base_url, max_connections=size) as client:
                for burst in range(2):
                    if burst:
                        between()
                    await asyncio.gather(*(client.create(image=URL_IMAGE, prompt="p", timeout=60)
                                           for _ in range(creates)))

        asyncio.run(main())
    assert len(server.seen) == 2 * creates
    return {s.client_port for s in server.seen}


@pytest.mark.parametrize("threads", [False, True], ids=["async", "sync-threads"])
@pytest.mark.parametrize("size", [4, 16])
def test_concurrent_creates_open_no_more_connections_than_the_pool(
        server: ScriptedServer, size: int, threads: bool) -> None:
    """Every connection the pool opens is kept and reused, so many creates over a pool of
    `size` open at most `size` connections. With keep-alive cut to 1 this counted 31 for
    a pool of 4 (moved here from test_client_wire.py)."""
    ports = _two_bursts(server, size, threads=threads, action="delay:0.01")
    assert 1 <= len(ports) <= size, f"{len(ports)} connections for a pool of {size}"


@pytest.mark.parametrize("threads", [False, True], ids=["async", "sync-threads"])
def test_a_request_costs_the_pool_a_bounded_walk_however_many_connections_idle(
        server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, threads: bool) -> None:
    """A burst that starts on a full pool of idle connections. At size 32 httpcore's own
    pass asked 1,368 (threads) to 7,826 (async) connection-state questions per request,
    ours 77 (two passes, each one walk of the pool). The bound is linear in the size."""
    size = 32
    counts: Counter[str] = Counter()

    def start_counting() -> None:
        nonlocal counts
        counts = stack.enter_context(counting_state_queries(monkeypatch))

    with ExitStack() as stack:
        ports = _two_bursts(server, size, threads=threads, between=start_counting)
        per_request = sum(counts.values()) / (4 * size)
    assert len(ports) <= size
    assert per_request <= 8 * size, f"{per_request:.0f} state queries per request: {dict(counts)}"


class _ClosingServer:
    """Answers each request on a connection, then closes that connection (a gateway or
    proxy dropping an idle keep-alive connection) and says so through `closed`."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        body = httpx.Response(200, json=CREATED).content
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                if read_head(conn) is None:
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                conn.shutdown(socket.SHUT_WR)
            self.closed.set()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("make", [KlingClient, AsyncKlingClient], ids=["sync", "async"])
def test_a_create_never_goes_out_on_a_connection_the_server_has_closed(make: type) -> None:
    """A create sent on a connection the server closed meanwhile may or may not have been
    received: an ambiguous create. The pool checks the connection it hands out (a readable
    idle socket means the server hung up), so the second create opens a new connection."""
    server = _ClosingServer()
    try:
        async def twice_async() -> None:
            async with AsyncKlingClient(TOKEN, base_url=f"http://127.0.0.1:{server.port}") as client:
                await client.create(image=URL_IMAGE, prompt="p", timeout=30)
                assert server.closed.wait(10)
                await asyncio.sleep(0)
                await client.create(image=URL_IMAGE, prompt="p", timeout=30)

        if make is AsyncKlingClient:
            asyncio.run(twice_async())
        else:
            with KlingClient(TOKEN, base_url=f"http://127.0.0.1:{server.port}") as client:
                client.create(image=URL_IMAGE, prompt="p", timeout=30)
                assert server.closed.wait(10)
                client.create(image=URL_IMAGE, prompt="p", timeout=30)
    finally:
        server.close()
    assert server.connections == 2


@pytest.mark.parametrize("threads", [False, True], ids=["async", "sync-threads"])
def test_idle_connections_past_their_keep_alive_are_not_reused(
        server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, threads: bool) -> None:
    """httpx's keep-alive expiry (5 s) still holds with our pass: a pool whose connections
    idled past it opens new ones. The pool's clock is moved on instead of waiting 5 s."""
    size = 4
    real = time.monotonic

    def later() -> None:
        monkeypatch.setattr(time, "monotonic", lambda: real() + 3600)

    ports = _two_bursts(server, size, threads=threads, between=later)
    assert len(ports) == 2 * size  # every connection of the first burst expired


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_full_pool_closes_an_idle_connection_to_another_host_to_make_room(sync: bool) -> None:
    """A download goes to the video's host through the same pool as the API calls. With
    the pool full of idle connections to the gateway, the pass closes one of them and
    opens one to the other host, as httpcore does (else the download would wait forever)."""
    from kling_i2v import _pool, _wire

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with scripted_server() as gateway, scripted_server() as host:
        gateway.script(Reply(200, CREATED), Reply(200, CREATED))
        host.script(Reply(200, b"video"))
        urls = [gateway.base_url, host.base_url, gateway.base_url]
        if sync:
            with httpx.Client(transport=_wire.DeadlineTransport(limits=limits), timeout=10) as http:
                codes = [http.get(url + "/x").status_code for url in urls]
        else:
            async def main() -> list[int]:
                async with _pool.use_in(httpx.AsyncClient(limits=limits, timeout=10), limits) as http:
                    return [(await http.get(url + "/x")).status_code for url in urls]

            codes = asyncio.run(main())
        assert codes == [200, 200, 200]
        assert len({s.client_port for s in gateway.seen}) == 2  # closed for the other host, then new
        assert len(host.seen) == 1
