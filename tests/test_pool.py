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
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any

import httpcore
import httpx
import pytest
from kling_i2v import AsyncKlingClient, KlingClient, ResponseTooLargeError

from tests.conftest import load_data
from tests.scripted_server import Reply, ScriptedServer, read_head, scripted_server

TOKEN = "sk-canary-7f3a9c0d1e2b"
URL_IMAGE = "https://example.com/cat.png"
CREATED = load_data("reference_response.json") | {"status": "queued"}
QUERIED = load_data("query_in_progress.json")
TASK_ID = QUERIED["data"]["task_id"]
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
    proxy dropping an idle keep-alive connection) and says so through `closed`. With
    `hold`, each answer waits until `release` is set and says `connection: close` (so the
    client knows at once); `received` is set when a request has arrived. One connection
    at a time; `connections` counts them."""

    def __init__(self, body: Any = CREATED, *, hold: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.body = httpx.Response(200, json=body).content
        self.hold = hold
        self.received = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        extra = b"connection: close\r\n" if self.hold else b""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                if read_head(conn) is None:
                    continue
                self.received.set()
                if self.hold and not self.release.wait(30):
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra +
                             b"content-length: " + str(len(self.body)).encode() + b"\r\n\r\n" + self.body)
                conn.shutdown(socket.SHUT_WR)
            self.closed.set()

    def close(self) -> None:
        self.release.set()
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
            with _wire.use_deadlines(httpx.Client(limits=limits, timeout=10), limits) as http:
                codes = [http.get(url + "/x").status_code for url in urls]
        else:
            async def main() -> list[int]:
                async with _pool.use_in(httpx.AsyncClient(limits=limits, timeout=10), limits) as http:
                    return [(await http.get(url + "/x")).status_code for url in urls]

            codes = asyncio.run(main())
        assert codes == [200, 200, 200]
        assert len({s.client_port for s in gateway.seen}) == 2  # closed for the other host, then new
        assert len(host.seen) == 1


# ---------------------------------------------------------------- cancelled calls
# A cancelled call must not use up a place of the pool (encode/httpcore#1093, #1115: with
# httpcore 1.0.9's own pool every case below leaves the pool one connection short for good).


def _busy_connections(client: AsyncKlingClient | KlingClient) -> list[Any]:
    """The pool's connections that are not idle (with no call under way, none should be)."""
    pool = client._http._transport._pool
    return [c for c in pool._connections if not c.is_idle()]


def test_a_call_cancelled_before_its_new_connection_opens_leaves_no_connection_behind() -> None:
    """A waits on the pool's only connection, B is queued. A's answer closes that
    connection, so the pass run by A's close makes B a new one; B is cancelled before it
    wakes. httpcore kept that never-opened connection (not idle, not closed, not expired)
    and it held the only place for good: every later call waited out its deadline."""
    server = _ClosingServer(QUERIED, hold=True)

    async def main() -> None:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url, max_connections=1) as client:
            pool = client._http._transport._pool
            queued: list[asyncio.Task[Any]] = []

            async def first() -> Any:
                task = await client.get(TASK_ID, timeout=30)
                queued[0].cancel()  # B was just handed a new connection and has not run
                return task

            a = asyncio.create_task(first())
            assert await asyncio.to_thread(server.received.wait, 30)
            queued.append(asyncio.create_task(client.get(TASK_ID, timeout=30)))
            for _ in range(10_000):  # until B waits in the pool's queue (no clock involved)
                if len(pool._requests) == 2:
                    break
                await asyncio.sleep(0)
            assert len(pool._requests) == 2
            server.release.set()
            results = await asyncio.gather(a, queued[0], return_exceptions=True)
            assert results[0].task_id == TASK_ID
            assert isinstance(results[1], asyncio.CancelledError)
            assert server.connections == 1  # B's connection was never opened: the case at hand
            assert _busy_connections(client) == []
            assert (await client.get(TASK_ID, timeout=30)).task_id == TASK_ID  # the place is free
            assert server.connections == 2

    try:
        asyncio.run(main())
    finally:
        server.close()


def test_a_sync_call_whose_pool_wait_ends_as_it_gets_a_new_connection_leaves_none_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync pool's form of the case above: a call's wait for a place ends (PoolTimeout at
    its deadline) just as another call's close hands it a new connection (the thread's
    Event.wait returned False as the other thread set it). The wait is made to end then
    instead of racing for it."""
    from httpcore._sync import connection_pool as sync_pool

    server = _ClosingServer(QUERIED, hold=True)
    late: list[threading.Thread] = []
    waiting = threading.Event()
    original = sync_pool.PoolRequest.wait_for_connection

    def wait(self: Any, timeout: float | None = None) -> Any:
        if threading.current_thread() not in late:
            return original(self, timeout)
        waiting.set()
        original(self, timeout)  # handed a new connection by the first call's close
        raise httpcore.PoolTimeout("the wait ran out just then")

    def late_call() -> Any:
        late.append(threading.current_thread())
        return client.get(TASK_ID, timeout=30)

    monkeypatch.setattr(sync_pool.PoolRequest, "wait_for_connection", wait)
    try:
        with KlingClient(TOKEN, base_url=server.base_url, max_connections=1, max_retries=0) as client, \
                ThreadPoolExecutor(max_workers=2) as threads:
            first = threads.submit(client.get, TASK_ID, timeout=30)
            assert server.received.wait(30)
            second = threads.submit(late_call)
            assert waiting.wait(30)  # the second call waits in the pool's queue
            server.release.set()
            assert first.result(30).task_id == TASK_ID
            assert second.exception(30) is not None
            assert server.connections == 1  # the second call's connection was never opened
            assert _busy_connections(client) == []
            late.clear()
            assert client.get(TASK_ID, timeout=30).task_id == TASK_ID  # the place is free
    finally:
        server.close()


class _Interrupted(BaseException):
    """What interrupts a sync close (KeyboardInterrupt is one)."""


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_response_close_that_is_interrupted_still_frees_the_pools_place(
        server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, sync: bool) -> None:
    """A call cancelled while httpcore closes its response (async), or a close that raises
    (sync). httpcore marks the response closed, then awaits the connection's close under
    an anyio shield that a plain Task.cancel() goes through, so its pool never removed the
    request: the connection stayed spoken for, for good. Ours lets the request go, and
    closes the connection the close left busy."""
    server.script(Reply(200, QUERIED), Reply(200, QUERIED))
    if sync:
        def raising(self: Any) -> None:
            raise _Interrupted

        monkeypatch.setattr(httpcore.HTTP11Connection, "_response_closed", raising)
        with KlingClient(TOKEN, base_url=server.base_url, max_connections=1) as client:
            with pytest.raises(_Interrupted):
                client.get(TASK_ID, timeout=30)
            monkeypatch.undo()
            assert client._http._transport._pool._requests == []
            assert _busy_connections(client) == []
            assert client.get(TASK_ID, timeout=30).task_id == TASK_ID
    else:
        async def main() -> None:
            entered = asyncio.Event()

            async def stuck(self: Any) -> None:
                entered.set()
                await asyncio.Event().wait()  # until cancelled

            monkeypatch.setattr(httpcore.AsyncHTTP11Connection, "_response_closed", stuck)
            async with AsyncKlingClient(TOKEN, base_url=server.base_url, max_connections=1) as client:
                call = asyncio.create_task(client.get(TASK_ID, timeout=30))
                await asyncio.wait_for(entered.wait(), 30)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                monkeypatch.undo()
                assert client._http._transport._pool._requests == []
                assert _busy_connections(client) == []
                assert (await client.get(TASK_ID, timeout=30)).task_id == TASK_ID

        asyncio.run(main())
    assert len({s.client_port for s in server.seen}) == 2  # the busy one closed, a new one


_real_timeout = asyncio.timeout


@asynccontextmanager
async def _tracked_timeout(delay: float | None, active: list[asyncio.Timeout]) -> AsyncIterator[None]:
    """asyncio.timeout that keeps the running ones in `active` (for the test to move)."""
    async with _real_timeout(delay) as timeout:
        active.append(timeout)
        try:
            yield
        finally:
            active.remove(timeout)


@pytest.mark.parametrize("answer", ["whole", "too_large"])
def test_a_deadline_passing_while_the_response_closes_keeps_the_outcome_and_frees_the_place(
        server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    """The call's deadline passes just as httpcore closes the response: one read whole
    (httpx closes it at the body's end, inside the call's asyncio.timeout), or one refused
    as too large (the client closes it). The call used to fail with DeadlineExceededError
    (for a create, an ambiguous create although the answer was in) and the request stayed
    in the pool's queue for good. Now the call ends as the answer says, and the pool's only
    place is free. The test moves the deadline to "now" at the close instead of waiting."""
    active: list[asyncio.Timeout] = []
    closes: list[bool] = []  # per close: was a deadline running then
    original = httpcore.AsyncHTTP11Connection._response_closed

    async def closing(self: Any) -> None:
        closes.append(bool(active))
        if active:
            active[-1].reschedule(asyncio.get_running_loop().time())  # the deadline is now
            await asyncio.sleep(0)  # and fires here, inside httpcore's close
        await original(self)

    monkeypatch.setattr(asyncio, "timeout", lambda delay: _tracked_timeout(delay, active))
    monkeypatch.setattr(httpcore.AsyncHTTP11Connection, "_response_closed", closing)
    server.script(Reply(200, QUERIED), Reply(200, QUERIED))
    size = len(json.dumps(QUERIED)) - 1 if answer == "too_large" else None

    async def main() -> None:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url, max_connections=1,
                                    max_response_bytes=size) as client:
            if answer == "whole":
                assert (await client.get(TASK_ID, timeout=30)).task_id == TASK_ID
                assert closes == [True]  # httpx's close ran under the deadline: the case at hand
            else:
                with pytest.raises(ResponseTooLargeError):
                    await client.get(TASK_ID, timeout=30)
            assert client._http._transport._pool._requests == []
            assert _busy_connections(client) == []
            # what a user sees: the pool's one place serves the next call (a leaked place
            # would hold it in the pool's wait until its deadline)
            if answer == "whole":
                assert (await client.get(TASK_ID, timeout=5)).task_id == TASK_ID
            else:
                with pytest.raises(ResponseTooLargeError):
                    await client.get(TASK_ID, timeout=5)

    asyncio.run(main())
    assert len(server.seen) == len(closes) == 2
