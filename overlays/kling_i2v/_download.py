"""A video download: written beside its final name, verified, moved into place only whole.

A video is accepted only when the answer is 2xx, its raw length matches any
Content-Length, it is not empty, it is no larger than the cap, and it is an MP4/MOV
file whose top-level boxes add up to exactly its length. Kling delivers MP4
(gateway-facts.md "Query": `task_result.videos[].url`, `.mp4` on Kling's CDN). MP4 and
QuickTime files are a sequence of boxes, each `size(4) type(4)` (size 1: a 64-bit size
follows; size 0: to the end of the file), and begin with a `ftyp` box (ISO/IEC 14496-12
§4.2-4.3, "File Type Box"; Apple's QuickTime File Format, "File type compatibility
atom"). Walking the box sizes is what catches a close-delimited body cut in half, which
no Content-Length can. Anything else raises DownloadError and leaves nothing under the
final name.
"""

from __future__ import annotations

import errno
import os
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ._wire import ERROR_BODY_BYTES, Body, Deadline, answer
from .errors import DownloadError, KlingError
from .tasks import Task

if TYPE_CHECKING:
    from ._http import Reader

__all__ = ["DEFAULT_MAX_VIDEO_BYTES", "Target"]

DEFAULT_MAX_VIDEO_BYTES = 2 << 30
"""2 GiB: Kling's clips are at most 15 s (gateway-facts.md "Models"), tens of MB at
1080p; the cap only stops a server that never ends."""


def file_name(task_id: str) -> str:
    """A file name from a task id, which comes from the gateway: "../x" or "/etc/x" must
    not take the video out of the folder it was asked into."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", task_id.strip())[:200].lstrip(".")
    return name or "video"


def exists(target: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, "exists; pass overwrite=True to replace it", str(target))


def shown(url: httpx.URL) -> str:
    """A video URL for messages: without its query, which holds a CDN's signature."""
    return str(url.copy_with(query=None, fragment=None))[:200]


class Target:
    """The file a video is being written to, next to its final name."""

    def __init__(self, path: str | os.PathLike[str], task_or_url: Task | str, overwrite: bool,
                 *, reader: Reader, max_bytes: int) -> None:
        target = Path(path)
        if target.is_dir() or os.fspath(path).endswith(("/", os.sep)):
            target.mkdir(parents=True, exist_ok=True)
            if isinstance(task_or_url, Task):
                name = file_name(task_or_url.task_id)
            else:  # the URL's own file name, so two URLs into one folder do not collide
                name = file_name(Path(httpx.URL(task_or_url).path).stem) if "://" in task_or_url else ""
                name = name if name != "video" and name else "video"
            target = target / f"{name}.mp4"
        if target.exists() and not overwrite:
            raise exists(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target = target
        self.overwrite = overwrite
        self.reader = reader
        self.max_bytes = max_bytes
        # Not tempfile.mkstemp: its files are private (0600), and the video should get the
        # mode any new file gets (0666 less the umask). O_EXCL keeps the name ours alone.
        import secrets  # noqa: PLC0415

        self.temp = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.file = os.fdopen(fd, "wb")

    def sink(self, url: httpx.URL, deadline: Deadline) -> VideoSink:
        self.file.seek(0)
        self.file.truncate()
        return VideoSink(self, url, deadline)

    def finish(self) -> Path:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if self.overwrite:
            os.replace(self.temp, self.target)
        else:
            try:
                os.link(self.temp, self.target)  # fails, atomically, if the name was taken
            except FileExistsError:
                raise exists(self.target) from None
            except OSError:  # a file system without hard links
                os.replace(self.temp, self.target)
            self.temp.unlink(missing_ok=True)
        return self.target

    def abandon(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.temp.unlink(missing_ok=True)


class VideoSink:
    """One try at the video: a redirect to follow, an error answer, or the video."""

    def __init__(self, target: Target, url: httpx.URL, deadline: Deadline) -> None:
        self.target = target
        self.url = url
        self.deadline = deadline
        self.location: str | None = None
        self.response: httpx.Response | None = None
        self.body: Body | None = None
        self.expected: int | None = None
        self.boxes = _Boxes()

    def begin(self, response: httpx.Response) -> bool:
        self.response = response
        status = response.status_code
        if 300 <= status < 400 and response.headers.get("location"):
            self.location = response.headers["location"]
            return False
        if not 200 <= status < 300:
            self.body = Body(response, limit=ERROR_BODY_BYTES, deadline=self.deadline, truncate=True)
            return True
        length = response.headers.get("content-length", "")
        self.expected = int(length) if length.isdigit() and len(length) < 19 else None
        self.body = Body(response, limit=self.target.max_bytes, deadline=self.deadline,
                         what="video", write=self._write)
        return True

    def _write(self, data: bytes) -> None:
        self.boxes.feed(data)
        self.target.file.write(data)

    def feed(self, raw: bytes) -> bool:
        assert self.body is not None
        return self.body.feed(raw)

    def end(self) -> Any:
        if self.location is not None:
            return self.location
        assert self.response is not None and self.body is not None
        response = self.response
        if not 200 <= response.status_code < 300:
            raise self.target.reader.status_error(answer(response, self.body.content()))
        self.body.content()  # flushes the inflater into the file
        where = shown(self.url)
        if self.expected is not None and self.body.raw_bytes != self.expected:
            raise DownloadError(f"the body was cut: {self.body.raw_bytes:,} of {self.expected:,} "
                                "bytes arrived", url=where, retryable=True)
        problem = self.boxes.problem()
        if problem is not None:
            kind = self.target.reader.clean(response.headers.get("content-type", "none"))[:60]
            raise DownloadError(f"{problem} (content type {kind})", url=where,
                                retryable=self.boxes.cut)
        return None


class _Boxes:
    """Follows the top-level boxes of an MP4/MOV file as its bytes go by; holds at most
    one box header (16 bytes) between chunks."""

    def __init__(self) -> None:
        self.size = 0
        self.head = b""
        self.next_box = 0
        self.pending = b""
        """The bytes from `next_box` up to `size`, while `next_box` <= `size`."""
        self.to_end = False
        self.bad: str | None = None
        self.cut = False

    def feed(self, data: bytes) -> None:
        offset = self.size
        self.size += len(data)
        if len(self.head) < 16:
            self.head += data[: 16 - len(self.head)]
        if self.bad is not None or self.to_end or self.next_box >= self.size:
            return
        self.pending += data[max(0, self.next_box - offset):]
        while self.bad is None and not self.to_end and len(self.pending) >= 8:
            size, kind = struct.unpack(">I4s", self.pending[:8])
            if self.next_box == 0 and kind != b"ftyp":
                self.bad = _not_a_video(self.head)
            elif size == 0:
                self.to_end = True
            elif size == 1:
                if len(self.pending) < 16:
                    return
                (size,) = struct.unpack(">Q", self.pending[8:16])
                if size < 16:
                    self.bad = "the video's box sizes are broken"
            elif size < 8:
                self.bad = "the video's box sizes are broken"
            if self.bad is not None or self.to_end:
                return
            self.next_box += size
            self.pending = self.pending[size:]

    def problem(self) -> str | None:
        if self.size == 0:
            return "the body is empty"
        if self.bad is None and self.size >= 8 and self.head[4:8] != b"ftyp":
            self.bad = _not_a_video(self.head)
        if self.bad is not None or self.size < 8:
            return self.bad or _not_a_video(self.head)
        if self.to_end or self.next_box == self.size:
            return None
        if self.next_box > self.size:
            self.cut = True
            return (f"the video was cut: its boxes announce {self.next_box:,} bytes, "
                    f"{self.size:,} arrived")
        return "the video's last box is incomplete"


def _not_a_video(head: bytes) -> str:
    start = head.lstrip()[:15].lower()
    if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return "the body is a web page, not a video"
    if start.startswith((b"{", b"[")):
        return "the body is JSON, not a video"
    return "the body is not an MP4/MOV video (no 'ftyp' box at its start)"


def no_video(task: Task) -> KlingError:
    return KlingError(f"{task} has no video to download yet")
