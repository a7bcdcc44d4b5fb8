"""A loopback HTTP server that answers with whatever a test scripts, byte for byte.

The fake gateway (`kling_i2v.testing`) is a faithful gateway; this is its opposite:
a server that says exactly the wrong thing a test needs (an HTML 502, a reset, a
Retry-After date), so the client's handling of each answer can be pinned down.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs


class QuietHandler(BaseHTTPRequestHandler):
    """What every loopback server of the tests wants from http.server: keep-alive, no log
    lines on stderr, and the request's body read whole."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""


def read_head(conn: socket.socket, chunk: int = 65536) -> tuple[str, dict[str, str], bytes] | None:
    """For servers below http.server: a request's first line, its headers (lower-case names)
    and whatever was read past the head, from a raw socket; None if the peer hung up first."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(chunk)
        if not more:
            return None
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    return line, {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}, rest


@attrs.define
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = attrs.field(factory=dict)
    action: str | None = None
    """None to answer; "reset" to close without answering; "delay:<s>" to sleep first."""

    def payload(self) -> bytes:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0
    """The client's source port: one per TCP connection."""

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(500, {"error": {"message": "nothing scripted", "type": "test"}})
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                body = self.read_body()
                with server._lock:
                    server.seen.append(
                        Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                             self.client_address[1])
                    )
                    reply = server.replies.popleft() if server.replies else server.default
                if reply.action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                if reply.action and reply.action.startswith("delay:"):
                    threading.Event().wait(float(reply.action.split(":", 1)[1]))
                payload = reply.payload()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def listen(self, *, backlog: int) -> None:
        """Queue up to `backlog` connections not yet accepted (socketserver's 5 resets
        some of many connections opened at once)."""
        self._server.socket.listen(backlog)

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def requests_to(self, method: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
