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
  (httpcore counts all connections there, encode/httpcore#1035 "Bug 1").

The pools here are HTTP/1.1 only (http2=False, as both clients build them): an HTTP/1.1
connection serves one request at a time, which is what "one request per pass" relies on.
The override uses httpcore's private pool attributes (`_connections`, `_requests`,
`_max_connections`, `_max_keepalive_connections`); tests/test_pool.py drives it over
loopback, so an httpcore release that renames them fails there.
"""

from __future__ import annotations

import time
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncConnectionPool", "ConnectionPool", "use_in"]

_SWEEP_SECONDS = 1.0
"""How often all idle connections are checked for expiry. A guess at a bound that keeps
the sweep's cost (a poll of each idle socket) off every request while closing expired
connections promptly; reuse never depends on it (the reused connection is always checked)."""


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
        if id(connection) not in spoken_for and connection.is_idle():
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


class _OneWalk:
    """The pass, for either of httpcore's pools (its own pass does no I/O in either)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sweep = {"next_sweep": 0.0}

    def _assign_requests_to_connections(self) -> list[Any]:
        return _assign(self, self._sweep)


class ConnectionPool(_OneWalk, httpcore.ConnectionPool):
    """httpcore.ConnectionPool with the one-walk assignment pass (sync client)."""


class AsyncConnectionPool(_OneWalk, httpcore.AsyncConnectionPool):
    """httpcore.AsyncConnectionPool with the one-walk assignment pass (async client)."""


def use_in(http: httpx.AsyncClient, limits: httpx.Limits) -> httpx.AsyncClient:
    """`http` with the pool of its own transport replaced by ours, built with the settings
    httpx gave it (HTTP/1.1, no retries, its SSL context). The client is built by httpx
    first so that its proxy mounts from the environment stay as httpx made them
    (tests/test_send.py pins HTTP_PROXY for the async client); those keep httpcore's pool."""
    transport = http._transport
    if isinstance(transport, httpx.AsyncHTTPTransport):
        old = transport._pool
        transport._pool = AsyncConnectionPool(
            ssl_context=old._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
        )
    return http
