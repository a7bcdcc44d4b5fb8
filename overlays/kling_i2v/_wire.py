"""Reading answers within bounds: a size cap after decompression, and a deadline for the
whole call.

httpx bounds each single read by its timeouts, not a call: a server that sends one
byte a second never trips a 120 s read timeout, and httpx inflates a gzip body chunk by
chunk without a limit (a 509 KB bomb becomes 512 MB). So the client reads raw bytes,
inflates them itself with an output limit, counts, and checks a deadline between reads;
the deadline also shortens every socket wait (`use_deadlines`), so a server that
trickles its headers is cut off too.
"""

from __future__ import annotations

import contextvars
import functools
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from .errors import DeadlineExceededError, ResponseTooLargeError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Body",
    "Deadline",
    "use_deadlines",
]

DEFAULT_MAX_RESPONSE_BYTES = 4 << 20
"""The largest JSON answer read: a query answer is a few KB (gateway-facts.md "Query":
the task, Kling's reply and its video list), so 4 MiB leaves room for any growth."""

ERROR_BODY_BYTES = 64 << 10
"""What is read of an error answer: enough for either gateway error shape and a snippet;
the rest of a 64 MB HTML error page is never read."""

CHUNK = 64 << 10


class Deadline:
    """The end of a whole call. Time counts on both the client's clock (which tests may
    simulate, and which retry waits use) and the real clock (which socket waits use)."""

    __slots__ = ("_clock", "_real", "_start_clock", "_start_real", "operation", "seconds")

    def __init__(self, operation: str, seconds: float | None, clock: Callable[[], float]) -> None:
        self.operation = operation
        self.seconds = seconds
        self._clock = clock
        self._start_clock = clock()
        self._start_real = time.monotonic()

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        elapsed = max(self._clock() - self._start_clock, time.monotonic() - self._start_real)
        return self.seconds - elapsed

    def check(self, *, request_sent: bool = True) -> None:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise self.exceeded(request_sent=request_sent)

    def exceeded(self, *, request_sent: bool = True) -> DeadlineExceededError:
        return DeadlineExceededError(self.operation, self.seconds or 0.0, request_sent=request_sent)

    def timeout(self, configured: httpx.Timeout) -> httpx.Timeout:
        """`configured`, with every phase cut to the time left."""
        remaining = self.remaining()
        if remaining is None:
            return configured
        left = max(remaining, 0.001)

        def cut(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(connect=cut(configured.connect), read=cut(configured.read),
                             write=cut(configured.write), pool=cut(configured.pool))


# The deadline of the call running in this thread / task, for the socket reads.
_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "kling_i2v_deadline", default=None)


def enter(deadline: Deadline) -> contextvars.Token[Deadline | None]:
    return _CURRENT.set(deadline)


def leave(token: contextvars.Token[Deadline | None]) -> None:
    _CURRENT.reset(token)


def _socket_timeout(timeout: float | None, late: type[Exception] | None = None) -> float | None:
    deadline = _CURRENT.get()
    remaining = deadline.remaining() if deadline is not None else None
    if remaining is None:
        return timeout
    if remaining <= 0:
        import httpcore

        raise (late or httpcore.ReadTimeout)("the call's deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


@functools.cache
def _deadline_backend() -> type[Any]:
    """httpcore's sync network backend, with sockets whose every wait ends by the current
    call's deadline. Built when the first sync client is made: httpx itself imports
    httpcore (with h11 and anyio, ~12 ms) only then, and `import kling_i2v` need not
    pay for it earlier (issue 12)."""
    import httpcore

    class DeadlineStream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, _socket_timeout(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _socket_timeout(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> httpcore.NetworkStream:
            return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                         _socket_timeout(timeout)))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class DeadlineBackend(httpcore.SyncBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None,
                        socket_options: Any = None) -> httpcore.NetworkStream:
            # ConnectTimeout: nothing was sent, which is what makes a create safe to retry
            return DeadlineStream(super().connect_tcp(
                host, port, _socket_timeout(timeout, httpcore.ConnectTimeout), local_address,
                socket_options))

    return DeadlineBackend


def use_deadlines(http: httpx.Client, limits: httpx.Limits) -> httpx.Client:
    """`http`, built by httpx with the environment's proxy mounts (HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY, NO_PROXY: httpx ignores them for a client given a `transport=`), with every
    socket wait ending by the call's deadline: its own transport's pool becomes ours
    (_pool.use_in: the one-walk pass, with the deadline backend), and each proxy
    mount's httpcore pool gets the deadline backend (httpcore's ConnectionPool reads
    `_network_backend` whenever it opens a connection, httpcore 1.0.9)."""
    from ._pool import use_in

    backend = _deadline_backend()()
    use_in(http, limits, network_backend=backend)
    for mount in http._mounts.values():
        if isinstance(mount, httpx.HTTPTransport):
            mount._pool._network_backend = backend
    return http


# --------------------------------------------------------------------- bodies


class Body:
    """Collects a body from raw (still encoded) chunks: inflates gzip/deflate itself with
    an output limit, refuses past `limit` bytes, and checks the deadline between reads."""

    def __init__(self, response: httpx.Response, *, limit: int, deadline: Deadline | None,
                 what: str = "answer", truncate: bool = False,
                 write: Callable[[bytes], object] | None = None) -> None:
        self.status_code = response.status_code
        self.limit = limit
        self.deadline = deadline
        self.what = what
        self.truncate = truncate
        """Keep the first `limit` bytes and stop, instead of raising (error answers)."""
        self.full = False
        self.raw_bytes = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._write = write
        """Where the bytes go instead of memory (a video file)."""
        # a response built in memory (httpx.MockTransport) comes already read and decoded
        self._inflate = None if response.is_stream_consumed else _inflater(response)

    def feed(self, raw: bytes) -> bool:
        """Take one raw chunk; False once nothing more is wanted."""
        if self.deadline is not None:
            self.deadline.check()
        self.raw_bytes += len(raw)
        if self._inflate is None:
            return self._take(raw)
        # inflate at most a chunk at a time: a 64 KiB bomb piece can hold 64 MiB
        data = self._inflate.decompress(raw, min(self.limit - self._size + 1, CHUNK))
        while True:
            if not self._take(data):
                return False
            tail = self._inflate.unconsumed_tail
            if not tail:
                return True
            data = self._inflate.decompress(tail, min(self.limit - self._size + 1, CHUNK))

    def _take(self, data: bytes) -> bool:
        if self._size + len(data) > self.limit:
            if not self.truncate:
                raise ResponseTooLargeError(status_code=self.status_code, limit=self.limit,
                                            what=self.what)
            data = data[: self.limit - self._size]
            self.full = True
        if self._write is not None:
            self._write(data)
        else:
            self._parts.append(data)
        self._size += len(data)
        return not self.full

    def content(self) -> bytes:
        """The body (b"" when it went to `write`), once all of it has been fed."""
        if self._inflate is not None and not self.full:
            inflate, self._inflate = self._inflate, None
            self._take(inflate.flush())
        return b"".join(self._parts)


def _inflater(response: httpx.Response) -> Any:
    """A zlib decompressor for the body's Content-Encoding (the client asks only for gzip
    and deflate), None for identity. An encoding nobody asked for is read as identity, as
    httpx does (httpx/_models.py: unsupported values get its IdentityDecoder): the body
    then stands or falls by what it is, and a create's readable task id is not thrown
    away over a wrong header."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _Inflate(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _Inflate(zlib.MAX_WBITS, fallback=-zlib.MAX_WBITS)
    return None


class _Inflate:
    """zlib's decompressor, with `deflate` read as zlib or raw deflate (servers send both;
    httpx's DeflateDecoder does the same) and errors turned into our own."""

    def __init__(self, wbits: int, fallback: int | None = None) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._fallback = fallback
        self._started = False
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        try:
            out = self._obj.decompress(data, max(max_length, 1))
        except zlib.error as exc:
            if self._fallback is None or self._started:
                raise httpx.DecodingError(f"the body does not match its Content-Encoding: {exc}") from None
            self._obj = zlib.decompressobj(self._fallback)
            self._fallback = None
            return self.decompress(data, max_length)
        self._started = True
        self.unconsumed_tail = self._obj.unconsumed_tail
        return out

    def flush(self) -> bytes:
        return self._obj.flush()


def answer(response: httpx.Response, content: bytes) -> httpx.Response:
    """A read response holding `content` (already inflated) for the answer readers."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=content,
                          request=response.request, extensions=response.extensions)


def raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body as it came off the wire, or the whole body of a response that was read
    before it reached us (httpx.MockTransport builds them so)."""
    if response.is_stream_consumed:
        yield response.content
    else:
        yield from response.iter_raw(CHUNK)


async def araw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:
        yield response.content
    else:
        async for chunk in response.aiter_raw(CHUNK):
            yield chunk
