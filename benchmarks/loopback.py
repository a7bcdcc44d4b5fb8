"""A minimal HTTP/1.1 keep-alive server for the benchmarks, run in its own process.

    python benchmarks/loopback.py [--port N] [--loop auto|uvloop|asyncio]
        prints "PORT <n>" once listening on 127.0.0.1; stops when its stdin closes

It answers the two endpoints the benchmarks call with fixed, valid JSON, and nothing
else: no spec checks, no task store, no threads. The point is to make the server the
cheapest part of every request, so the figures measure the clients. (The fake gateway
in kling_i2v.testing is the right server for behaviour tests, but it is a threaded
http.server that validates every body against the spec: a 13 MB create costs it more
than the client's own work, which would hide the difference being measured.)

    POST /kling/v1/videos/image2video            200, a VideoTask (status queued), a new id each time
    GET  /kling/v1/videos/image2video/{task_id}  200, a TaskQueryResponse (succeeded) for that id
    GET  /files/{task_id}.mp4                    200, the fake gateway's sample MP4 (5.8 KB)
    GET  /__stats                                200, the server's own counters, as JSON

Request bodies are counted and dropped, never buffered: a 13 MB upload costs the server
one pass over the socket. `/__stats` reports requests served, body bytes received and
the process CPU time, so the runner can show what each request cost the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import cast

CREATE_PATH = b"/kling/v1/videos/image2video"
TASK_ID = "880000000000000001"

CREATED = {
    "id": TASK_ID,
    "task_id": TASK_ID,
    "object": "video",
    "model": "kling-v2-6",
    "status": "queued",
    "progress": 0,
    "created_at": 1767225600,
}

QUERIED = {
    "code": "success",
    "message": "",
    "data": {
        "task_id": TASK_ID,
        "action": "image2video",
        "status": "SUCCESS",
        "fail_reason": "",
        "submit_time": 1767225600,
        "start_time": 1767225601,
        "finish_time": 1767225720,
        "progress": "100%",
        "data": {
            "code": 0,
            "message": "SUCCEED",
            "request_id": "benchrequest0000000001",
            "data": {
                "task_id": TASK_ID,
                "task_status": "succeed",
                "task_status_msg": "",
                "task_info": {},
                "created_at": 1767225600000,
                "updated_at": 1767225720000,
                "task_result": {
                    "videos": [
                        {
                            "id": TASK_ID + "-0",
                            "url": "http://127.0.0.1/files/" + TASK_ID + ".mp4",
                            "duration": "5",
                        }
                    ]
                },
            },
        },
    },
}


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"\r\n" + body
    )


CREATE_REPLY = _response(b"200 OK", json.dumps(CREATED).encode())
_CREATED_BODY = json.dumps(CREATED).encode()
_QUERIED_BODY = [json.dumps(QUERIED).encode()]  # the video URL gets the port once bound
VIDEO = (Path(__file__).resolve().parent.parent
         / "overlays" / "kling_i2v" / "testing" / "assets" / "sample.mp4").read_bytes()
VIDEO_REPLY = (b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\n"
               b"content-length: " + str(len(VIDEO)).encode() + b"\r\n\r\n" + VIDEO)
_next_id = [int(TASK_ID)]


def _created() -> bytes:
    # A new task id per create: a batch keeps one journal row per task id.
    _next_id[0] += 1
    return _response(b"200 OK", _CREATED_BODY.replace(TASK_ID.encode(), str(_next_id[0]).encode()))


def _queried(task_id: bytes) -> bytes:
    if not task_id.isdigit() or len(task_id) > 24:
        return NOT_FOUND
    return _response(b"200 OK", _QUERIED_BODY[0].replace(TASK_ID.encode(), task_id))
NOT_FOUND = _response(b"404 Not Found", b'{"error":{"message":"not found","type":"x","code":"x"}}')
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

_stats = {"requests": 0, "body_bytes": 0, "last_body_bytes": 0, "connections": 0}
_loop_name = ["asyncio"]


def _stats_reply() -> bytes:
    body = dict(_stats, cpu_seconds=time.process_time(), pid=os.getpid(), loop=_loop_name[0])
    return _response(b"200 OK", json.dumps(body).encode())


class _Connection(asyncio.Protocol):
    __slots__ = ("buffer", "remaining", "reply", "transport")
    transport: asyncio.Transport

    def __init__(self) -> None:
        self.buffer = b""
        self.remaining = 0  # body bytes still to drop
        self.reply = b""  # what to send once the body is in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        _stats["connections"] += 1
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.remaining:
            if len(data) < self.remaining:
                self.remaining -= len(data)
                return
            data = data[self.remaining :]
            self.remaining = 0
            self.transport.write(self.reply)
        buffer = self.buffer + data if self.buffer else data
        while buffer:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length = _content_length(head)
            if length < 0:
                self.transport.write(BAD_REQUEST)
                self.transport.close()
                return
            reply = _route(head)
            _stats["requests"] += 1
            _stats["body_bytes"] += length
            _stats["last_body_bytes"] = length
            body_start = end + 4
            available = len(buffer) - body_start
            if available < length:
                self.remaining = length - available
                self.reply = reply
                buffer = b""
                break
            self.transport.write(reply)
            buffer = buffer[body_start + length :]
        self.buffer = buffer


def _content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return -1 if b"\r\ntransfer-encoding:" in lower else 0
    end = lower.find(b"\r\n", at + 2)
    try:
        return int(lower[at + 17 : end if end >= 0 else len(lower)])
    except ValueError:
        return -1


def _route(head: bytes) -> bytes:
    line_end = head.find(b"\r\n")
    method, _, rest = head[: line_end if line_end >= 0 else len(head)].partition(b" ")
    path = rest.partition(b" ")[0].partition(b"?")[0]
    if method == b"POST" and path == CREATE_PATH:
        return _created()
    if method == b"GET" and path.startswith(CREATE_PATH + b"/"):
        return _queried(path[len(CREATE_PATH) + 1 :])
    if method == b"GET" and path.startswith(b"/files/"):
        return VIDEO_REPLY
    if method == b"GET" and path == b"/__stats":
        return _stats_reply()
    return NOT_FOUND


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    _QUERIED_BODY[0] = _QUERIED_BODY[0].replace(b"http://127.0.0.1/", f"http://127.0.0.1:{bound}/".encode())
    print(f"PORT {bound}", flush=True)
    # Stop when the parent closes our stdin (or dies): no orphaned servers.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="The benchmarks' loopback server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="auto: uvloop when installed (a dev dependency), else asyncio")
    args = parser.parse_args()
    if args.loop != "asyncio":
        try:
            # libuv's loop roughly halves what each request costs the server
            import uvloop
        except ImportError:
            if args.loop == "uvloop":
                raise
        else:
            _loop_name[0] = f"uvloop {getattr(uvloop, '__version__', '?')}"
            uvloop.run(_serve(args.port))
            return
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
