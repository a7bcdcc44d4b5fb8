"""A loopback server that misbehaves at the byte level: every answer is a function that
writes whatever it likes to the socket (a trickle, an endless body, a gzip bomb, a cut).

tests/scripted_server.py answers whole, well-formed HTTP messages; the attacks here need
control below that. Each connection serves one request and is closed after the answer.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.scripted_server import read_head

Answer = Callable[[socket.socket, dict[str, str]], None]


class Misbehaving:
    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.answers: deque[Answer] = deque()
        self.default: Answer = json_answer(500, {"error": {"message": "nothing scripted"}})
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def requests_to(self, method: str) -> int:
        return sum(1 for line, _ in self.requests if line.startswith(method))

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            request = read_head(conn)
            if request is None:
                return
            line, headers, rest = request
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.requests.append((line, headers))
            answer = self.answers.popleft() if self.answers else self.default
            answer(conn, headers)
        except OSError:
            pass  # the client hung up: that is what several attacks are waiting for
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._sock.close()


@contextmanager
def misbehaving() -> Iterator[Misbehaving]:
    server = Misbehaving()
    try:
        yield server
    finally:
        server.close()


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


def raw_answer(status: int, body: bytes, headers: dict[str, str] | None = None, *,
               length: int | None = None) -> Answer:
    """`body` with a Content-Length of `length` (default: its own; -1: none, close-delimited)."""
    def answer(conn: socket.socket, _: dict[str, str]) -> None:
        extra = dict(headers or {})
        size = len(body) if length is None else length
        if size >= 0:
            extra["Content-Length"] = str(size)
        conn.sendall(_head(status, extra) + body)
    return answer


def json_answer(status: int, obj: Any, headers: dict[str, str] | None = None) -> Answer:
    return raw_answer(status, json.dumps(obj).encode(),
                      {"Content-Type": "application/json", **(headers or {})})


def endless(status: int = 200, content_type: str = "application/json",
            chunk: bytes = b'{"pad": "' + b"a" * 65536) -> Answer:
    """A chunked body that never ends (until the client hangs up)."""
    def answer(conn: socket.socket, _: dict[str, str]) -> None:
        conn.sendall(_head(status, {"Content-Type": content_type, "Transfer-Encoding": "chunked"}))
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            conn.sendall(frame)
    return answer


def huge(size: int, status: int = 200, content_type: str = "application/json") -> Answer:
    """A body of `size` bytes, announced and sent in full (if the client keeps reading)."""
    def answer(conn: socket.socket, _: dict[str, str]) -> None:
        conn.sendall(_head(status, {"Content-Type": content_type, "Content-Length": str(size)}))
        block = b"<" + b"a" * 65535 if "html" in content_type else b"[" * 65536
        sent = 0
        while sent < size:
            piece = block[: size - sent]
            conn.sendall(piece)
            sent += len(piece)
    return answer


def trickle(body: bytes, *, every: float = 0.2, headers_too: bool = False,
            content_type: str = "application/json") -> Answer:
    """One byte every `every` seconds: of the body, or of the whole answer."""
    def answer(conn: socket.socket, _: dict[str, str]) -> None:
        head = _head(200, {"Content-Type": content_type, "Content-Length": str(len(body))})
        if not headers_too:
            conn.sendall(head)
        for byte in (head + body if headers_too else body):
            conn.sendall(bytes([byte]))
            time.sleep(every)
    return answer


def gzip_bomb(inflated: int, content_type: str = "application/json") -> tuple[Answer, int]:
    """A gzip body that inflates to `inflated` bytes of zeros; and its compressed size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    parts.append(compressor.flush())
    payload = b"".join(parts)
    return raw_answer(200, payload, {"Content-Type": content_type, "Content-Encoding": "gzip"}), len(payload)


def gzipped(status: int, body: bytes, content_type: str) -> Answer:
    return raw_answer(status, gzip.compress(body), {"Content-Type": content_type,
                                                     "Content-Encoding": "gzip"})


def redirect(location: str, status: int = 302) -> Answer:
    return raw_answer(status, b"", {"Location": location})


def echo_token(status: int, shape: Callable[[str], Any]) -> Answer:
    """Puts the Authorization header the client sent into the answer."""
    def answer(conn: socket.socket, headers: dict[str, str]) -> None:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        json_answer(status, shape(token))(conn, headers)
    return answer


def cut(body: bytes, keep: int, *, announce: bool = True, content_type: str = "video/mp4") -> Answer:
    """The first `keep` bytes of `body`, then the connection closes: with the full
    Content-Length announced, or close-delimited (no length at all)."""
    def answer(conn: socket.socket, _: dict[str, str]) -> None:
        headers = {"Content-Type": content_type}
        if announce:
            headers["Content-Length"] = str(len(body))
        conn.sendall(_head(200, headers) + body[:keep])
    return answer
