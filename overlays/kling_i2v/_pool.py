"""httpcore's connection pool with an assignment pass that costs one walk of the pool.

Why (issue 12, measured at 256 concurrent creates on loopback): httpcore 1.0.9 runs
`_assign_requests_to_connections` on every request start and every response end. The
pass counts the pool once for every idle connection (`len([c.is_idle() for c in
self._connections])` inside the loop over connections), re-lists the connections for every
queued request, and polls every idle socket. With 256 idle connections one pass took about
14 ms, so right after a 256-wide burst the client spent ~3.6 s doing nothing but passes
(0 creates in those seconds), and the connections opened for the burst idled past the 5 s
keep-alive and were closed, then opened again when the calls came back: 259-284 TCP
connections for 256 concurrent calls, in ours and in raw httpx alike. A longer keep-alive
only made it worse (the pool stayed at 256 idle connections: 512 creates took 30 s
instead of 7). The same costs are described upstream: encode/httpcore#1035 ("O(N²+NxM)"),
pydantic/httpx2#974 (single-pass rewrite) and #1075 (an idle HTTP/1.1 connection handed
to every queued request, the losers re-queued), encode/httpcore#1110 (a pass closing a
connection already given to a queued request, which then hangs or is re-queued).

What this pass does differently, and nothing else:
- one walk of the pool; connections given to a request that has not started on them yet
  ("spoken for") are never closed or handed out again;
- an idle connection goes to one queued request per pass;
- `has_expired()` (keep-alive expiry, or the server closed its side, seen as a readable
  idle socket) is asked of the connection about to be reused, every time, so a request is
  never sent on a connection known to be stale; the other idle connections are checked
  by the first pass after `_SWEEP_SECONDS` (httpcore, too, closes them only in a pass);
- surplus idle connections beyond max_keepalive_connections are counted as idle ones
  (httpcore counts all connections there, encode/httpcore#1035 "Bug 1");
- a connection no request owns that is not idle (left by a cancelled request) is closed,
  and a response close that is interrupted still lets its request go: httpcore kept both
  for good, each holding a place of max_connections (encode/httpcore#1093, #1115).

The pools here are HTTP/1.1 only (http2=False, as both clients build them): an HTTP/1.1
connection serves one request at a time, which is what "one request per pass" relies on.
The override uses httpcore's private pool attributes (`_connections`, `_requests`,
`_max_connections`, `_max_keepalive_connections`); tests/test_pool.py drives it over
loopback, so an httpcore release that renames them fails there.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import httpcore
import httpx
from httpcore._async import connection_pool as _async_pool
from httpcore._sync import connection_pool as _sync_pool

__all__ = ["AsyncConnectionPool", "ConnectionPool", "use_in"]

H = TypeVar("H", httpx.Client, httpx.AsyncClient)

_SWEEP_SECONDS = 1.0
"""How often all idle connections are checked for expiry. A guess at a bound that keeps
the sweep's cost (a poll of each idle socket) off every request while closing expired
connections promptly; reuse never depends on it (the reused connection is always checked)."""


# Orphans: why a connection that no request in the pool's `_requests` owns, and that is
# neither idle nor closed, is closed (httpcore 1.0.9 keeps it, and it holds a place of
# max_connections for good, encode/httpcore#1093; the same rule is proposed upstream in
# encode/httpcore#1094, cf. #986, #1099, pydantic/httpx2#983):
# - a request cancelled after a pass handed it a new connection but before it woke leaves
#   that connection unopened (`_connection is None`, `_connect_failed` False:
#   is_idle/is_closed/has_expired all False, httpcore/_async/connection.py);
# - one cancelled after connecting but before taking the HTTP/1.1 state lock leaves it NEW
#   with an open socket (encode/httpcore#1099, second case);
# - a response close interrupted by a cancellation leaves it ACTIVE (encode/httpcore#1115;
#   the request itself is let go by _AsyncStream).
# A connection is driven only by the request it was handed to, while that request is in
# `_requests` with `.connection` set: httpcore's pool removes a request only after its
# response is closed (PoolByteStream.aclose) or after the connection's
# `handle_async_request` raised (a failed connect sets `_connect_failed`, so is_closed);
# a request re-queued on ConnectionNotAvailable found it busy with another or closed
# (httpcore/_async/connection_pool.py, connection.py, http11.py; the sync pool alike). So
# once no request owns it, nothing makes it idle again, and closing it is safe (an unopened
# one has no socket: its aclose does nothing). Note `_connection` is set only once the
# connect is done, under `_request_lock`: during the connect it is None too, so "unopened"
# alone would not tell an orphan from a connection being opened; ownership does.
# Pools here are HTTP/1.1 only (see the module's docstring).


def _assign(pool: Any, state: dict[str, float]) -> list[Any]:
    """The assignment pass for `pool` (sync or async: the pass itself does no I/O); the
    connections to close, as httpcore's pass returns them."""
    requests = pool._requests
    spoken_for = {id(r.connection) for r in requests if r.connection is not None}
    now = time.monotonic()
    sweep = now >= state["next_sweep"]
    if sweep:
        state["next_sweep"] = now + _SWEEP_SECONDS
    closing: list[Any] = []
    kept: list[Any] = []
    idle: list[Any] = []  # idle and not spoken for, oldest first (the pool's order)
    for connection in pool._connections:
        if connection.is_closed():
            continue
        if id(connection) not in spoken_for:
            if not connection.is_idle():
                # an orphan: only its request's close makes an HTTP/1.1 connection idle
                # again, and no request owns it any more (see "Orphans" above)
                closing.append(connection)
                continue
            if sweep and connection.has_expired():
                closing.append(connection)
                continue
            idle.append(connection)
        kept.append(connection)
    surplus = len(idle) - pool._max_keepalive_connections
    if surplus > 0:
        closing.extend(idle[:surplus])
        dropped = {id(c) for c in idle[:surplus]}
        idle = idle[surplus:]
        kept = [c for c in kept if id(c) not in dropped]
    pool._connections = kept

    for pool_request in requests:
        if not pool_request.is_queued():
            continue
        origin = pool_request.request.url.origin
        connection = _take_reusable(idle, origin, kept, closing)
        if connection is None:
            if len(kept) >= pool._max_connections:
                if not idle:
                    continue  # wait for a connection to come back
                # full, and none idle for this origin: make room as httpcore does
                victim = idle.pop(0)
                kept.remove(victim)
                closing.append(victim)
            connection = pool.create_connection(origin)
            kept.append(connection)
        pool_request.assign_to_connection(connection)
    return closing


def _take_reusable(idle: list[Any], origin: httpcore.Origin, kept: list[Any],
                   closing: list[Any]) -> Any:
    """The first idle connection to `origin` that is still good, taken out of `idle`;
    stale ones met on the way are closed (so a request never goes out on them)."""
    index = 0
    while index < len(idle):
        connection = idle[index]
        if not (connection.can_handle_request(origin) and connection.is_available()):
            index += 1
            continue
        del idle[index]
        if connection.has_expired():
            kept.remove(connection)
            closing.append(connection)
            continue
        return connection
    return None


def _let_go(pool: Any, pool_request: Any) -> list[Any]:
    """After a response close that raised: the request leaves the pool if httpcore's close
    did not get that far, and a pass runs (which closes the connection, now an orphan, if
    the close left it busy); the connections to close."""
    with pool._optional_thread_lock:
        if pool_request not in pool._requests:
            return []
        pool._requests.remove(pool_request)
        closing: list[Any] = pool._assign_requests_to_connections()
        return closing


class _AsyncStream(_async_pool.PoolByteStream):
    """httpcore's response stream, whose close lets the request go whatever happens.
    httpcore 1.0.9's `PoolByteStream.aclose` marks itself closed, then awaits the
    connection's close inside `AsyncShieldCancellation`, which on asyncio is an anyio
    shield: it does not stop a plain `Task.cancel()` (asyncio.timeout, TaskGroup,
    wait_for). A cancellation there skipped the removal from `_requests`, so the connection
    stayed spoken for, for good (encode/httpcore#1115, encode/httpx#3782; seen here with
    the client's deadline firing during the close, /tmp/review where.py)."""

    async def aclose(self) -> None:
        try:
            await super().aclose()
        except BaseException:
            await self._pool._close_connections(_let_go(self._pool, self._pool_request))
            raise


class _SyncStream(_sync_pool.PoolByteStream):
    """The same for the sync pool (an exception or KeyboardInterrupt during the close)."""

    def close(self) -> None:
        try:
            super().close()
        except BaseException:
            self._pool._close_connections(_let_go(self._pool, self._pool_request))
            raise


def _rewrapped(response: httpcore.Response, stream_class: type[Any], pool: Any) -> httpcore.Response:
    """`response` with httpcore's PoolByteStream moved into `stream_class` (one of ours)."""
    stream: Any = response.stream
    response.stream = stream_class(stream._stream, stream._pool_request, pool)
    return response


class _OneWalk:
    """The pass, for either of httpcore's pools (its own pass does no I/O in either)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sweep = {"next_sweep": 0.0}

    def _assign_requests_to_connections(self) -> list[Any]:
        return _assign(self, self._sweep)


class ConnectionPool(_OneWalk, httpcore.ConnectionPool):
    """httpcore.ConnectionPool with the one-walk assignment pass (sync client)."""

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        response = super().handle_request(request)
        return _rewrapped(response, _SyncStream, self)


class AsyncConnectionPool(_OneWalk, httpcore.AsyncConnectionPool):
    """httpcore.AsyncConnectionPool with the one-walk assignment pass (async client)."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        response = await super().handle_async_request(request)
        return _rewrapped(response, _AsyncStream, self)


def use_in(http: H, limits: httpx.Limits, *, network_backend: Any = None) -> H:
    """`http` with the pool of its own transport replaced by ours (ConnectionPool for an
    httpx.Client, AsyncConnectionPool for an httpx.AsyncClient), built with the settings
    httpx gave it (HTTP/1.1, httpcore's default of no retries, its SSL context: loading the
    CA bundle again would cost ~20 ms of start-up) and `network_backend` if given (the sync
    client's deadline-aware sockets, _wire.use_deadlines). The client is built by httpx
    first so that its proxy mounts from the environment stay as httpx made them
    (tests/test_send.py pins HTTP_PROXY); those keep httpcore's pool."""
    transport: Any = http._transport
    pool: type[Any] | None = (ConnectionPool if isinstance(transport, httpx.HTTPTransport) else
                              AsyncConnectionPool if isinstance(transport, httpx.AsyncHTTPTransport)
                              else None)
    if pool is not None:
        old = transport._pool
        transport._pool = pool(
            ssl_context=old._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=network_backend,
        )
    return http
