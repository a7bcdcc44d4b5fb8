"""The fake anyfast gateway: a real HTTP/1.1 server on loopback, in a daemon thread.

`FakeGateway` is what tests hold: it starts and stops the server, shows what was
received (`requests`, `tasks`, `callbacks`, `count`) and takes the controls (`inject`,
`set_fault_rates`, `advance`). Below it, the HTTP plumbing: keep-alive connections,
where each fault strikes, and recording every request (Authorization redacted) before it
is answered, so a test that got its response can count it at once. What is answered is
`api.Api`'s job.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from ..polling import Clock
from . import defaults
from .api import Api, RecordedRequest, fault_reply, target_of
from .callbacks import CallbackAttempt, CallbackNotifier
from .dialect import Dialect, dialect_named
from .faults import Fault, FaultPlan, Target
from .lifecycle import FakeTask, ManualClock, ScaledClock, SimTime
from .replies import REQUEST_ID_HEADER, Reply

__all__ = ["FakeGateway", "PortInUseError", "RecordedRequest"]

log = logging.getLogger("kling_i2v.testing")


class PortInUseError(OSError):
    """The address the fake gateway should listen on is taken."""


class FakeGateway:
    """The fake gateway. Use it as a context manager, or call start() and stop()."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = defaults.TOKENS,
        host: str = defaults.HOST,
        port: int = defaults.PORT,
        time_scale: float = defaults.TIME_SCALE,
        clock: Literal["scaled", "manual"] | Clock = "scaled",
        seed: int = defaults.SEED,
        task_seconds: float = defaults.TASK_SECONDS,
        dialect: str | Dialect = defaults.DIALECT,
        balance: int | None = None,
        max_running: int | None = None,
    ) -> None:
        """`time_scale`: simulated seconds per wall-clock second (clock="scaled" only);
        `clock`: "scaled", "manual" (moves on advance()), or any `kling_i2v.polling.Clock`,
        e.g. the `SimulatedClock` a client waits on, so the client's sleeps move the tasks;
        `task_seconds`: a task's simulated lifecycle unless its prompt says otherwise;
        `seed`: task ids and the default seed of random faults;
        `dialect`: which gateway version to imitate (see `kling_i2v.testing.dialect`);
        `balance`: how many more tasks the account can pay for (None: no limit), then 403;
        `max_running`: the account's limit of tasks created but not finished, then 429."""
        if not tuple(tokens):
            raise ValueError("at least one token is needed")
        if task_seconds < 0:
            raise ValueError("task_seconds must be >= 0")
        if isinstance(clock, str):
            if clock not in ("scaled", "manual"):
                raise ValueError(f"clock must be 'scaled', 'manual' or a Clock, not {clock!r}")
            self._clock: Clock = ManualClock() if clock == "manual" else ScaledClock(time_scale)
        else:
            self._clock = clock
        time_ = SimTime(self._clock)
        self._notifier = CallbackNotifier(time_)
        self._api = Api(tokens, time_, seed, task_seconds, dialect_named(dialect),
                        on_created=self._notifier.watch)
        self.set_balance(balance)
        self.set_max_running(max_running)
        self._faults = FaultPlan(seed)
        self._address = (host, port)
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- running

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake gateway is already running")
        try:
            self._server = _HTTPServer(self._address, self._api, self._faults)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    error.errno,
                    f"port {self._address[1]} on {self._address[0]} is already in use (another fake gateway?); "
                    "choose another port, or port 0 for any free one",
                ) from None
            raise
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)
        self._api.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # also how long stop() waits for the loop
            name="fake-gateway",
            daemon=True,
        )
        self._thread.start()
        self._notifier.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._notifier.stop()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ what tests see

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake gateway is not running: use it as a context manager")
        return self._api.base_url

    @property
    def tokens(self) -> tuple[str, ...]:
        """The accepted tokens."""
        return self._api.tokens

    @property
    def token(self) -> str:
        """The first accepted token."""
        return self._api.tokens[0]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self._api.requests

    @property
    def tasks(self) -> dict[str, FakeTask]:
        """Every task created so far, by task id (a copy)."""
        return self._api.tasks

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        """Every callback delivery attempted so far, oldest first."""
        return self._notifier.attempts

    def count(
        self, method: str | None = None, path: str | None = None, on: Target | None = None
    ) -> int:
        """How many received requests match all of the given method, path and target."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path is None or r.path == path)
            and (on is None or on == "any" or r.target == on)
        )

    def now(self) -> float:
        """The simulated clock, in unix seconds."""
        return self._api.time.now()

    @property
    def dialect(self) -> Dialect:
        return self._api.dialect

    @property
    def balance(self) -> int | None:
        """How many more tasks the account can pay for; None: no limit."""
        return self._api.limits.balance

    @property
    def running(self) -> int:
        """Tasks created but not finished, now."""
        return self._api.running()

    def video_url(self, task_id: str) -> str:
        """Where the task's video is served (once it succeeded)."""
        return self._api.video_url(task_id)

    # ------------------------------------------------------------- controlling

    def inject(self, fault: Fault, on: Target = "any", times: int | None = 1) -> None:
        """Apply `fault` to the next `times` requests to `on` (None: all, until cleared)."""
        self._faults.inject(fault, on, times)

    def set_fault_rates(self, rates: Mapping[str, float], seed: int = 0) -> None:
        """Random faults on create and query requests, e.g. {"429": 0.1, "5xx": 0.05}.

        Keys: 429, 500, 502, 503, 5xx, reset, drop_after_create (creates only), html,
        truncated_json, unknown_status. Draws come from random.Random(seed).
        """
        self._faults.set_rates(rates, seed)

    def clear_faults(self) -> None:
        """Forget queued faults and random rates."""
        self._faults.clear()

    def set_balance(self, tasks: int | None) -> None:
        """Let the account pay for `tasks` more tasks (None: no limit); creates beyond it
        get 403 in the dialect's code (`insufficient_user_quota` or `quota_not_enough`)."""
        if tasks is not None and tasks < 0:
            raise ValueError("balance must be >= 0 tasks (or None: no limit)")
        self._api.limits.balance = tasks

    def set_max_running(self, tasks: int | None) -> None:
        """Kling's limit of tasks created but not finished (None: no limit); creates beyond
        it get 429 in new-api's shape, without Retry-After."""
        if tasks is not None and tasks < 1:
            raise ValueError("max_running must be >= 1 (or None: no limit)")
        self._api.limits.max_running = tasks

    def advance(self, seconds: float) -> None:
        """Move a clock that only moves when told (clock="manual", or a SimulatedClock)."""
        if isinstance(self._clock, ScaledClock):
            raise TypeError('advance() needs FakeGateway(clock="manual") or a simulated clock')
        self._clock.sleep(seconds)
        self._notifier.wake()


# ------------------------------------------------------------------ HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: Api, faults: FaultPlan) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.api = api
        self.faults = faults
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("fake gateway: error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kling-i2v-fake-gateway"
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    # headers and body go out in two writes: without TCP_NODELAY the second one waits for
    # the client's delayed ACK, 40 ms per response
    disable_nagle_algorithm = True
    server: _HTTPServer
    _reset = False

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)
            if self._reset:
                # with SO_LINGER 0, closing the socket sends RST instead of FIN
                self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake gateway: " + format, *args)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # every method (GET, POST, QUERY, ...) comes here, so that a method the API does not
        # have is answered 405 with Allow, like an unknown path is answered 404
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        api, faults = self.server.api, self.server.faults
        received_at = time.monotonic()
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad request body framing")
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        headers = {name.lower(): value for name, value in self.headers.items()}
        target = target_of(self.command, path)
        fault = faults.take(target)
        request_id = api.request_id()

        def record(status: int) -> None:
            api.record(
                RecordedRequest(
                    method=self.command,
                    path=path,
                    headers=_redacted(headers),
                    json=_json_or_none(body),
                    status=status,
                    fault=fault.kind if fault else None,
                    target=target,
                    received_at=received_at,
                    request_id=request_id,
                )
            )

        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "reset_before_response":
            record(0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._reset = self.close_connection = True
            return
        if fault is not None and fault.kind in ("status", "body"):
            reply = fault_reply(fault, request_id, api.dialect)
        else:
            reply = api.dispatch(self.command, path, headers, body, request_id)
        if target != "download":  # the video host is a CDN, not new-api
            reply.headers.setdefault(REQUEST_ID_HEADER, request_id)
        if fault is not None and fault.kind == "drop_after_create":
            record(0)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "unknown_status":
            reply.report_status(fault.value)
        data = reply.encoded()
        if fault is not None and fault.kind == "truncated_json":
            data = data[: len(data) // 2]
        record(reply.status)
        self._send(reply, data)

    def _send(self, reply: Reply, data: bytes) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the client went away (e.g. its timeout fired during a delay)
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            size = int(length)
            if size < 0:
                raise ValueError("negative Content-Length")
            return self.rfile.read(size)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    if "authorization" in headers:
        scheme, space, _ = headers["authorization"].partition(" ")
        return {**headers, "authorization": f"{scheme} ***" if space else "***"}
    return headers


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
