"""Suite 5, unsafe targets: where the token, the request and the video may go.

- The token goes over plain http only to a loopback address: every base URL hypothesis
  makes up (tricky hosts, userinfo, fragments, IPv6, encodings) is either refused at
  construction or talks https, or plain http to a literal loopback IP or `localhost`.
  Redirects never carry it to another origin, even with a user's http_client that follows
  them.
- A task id, whatever its text, stays one path segment of the query URL on the gateway.
- Image URLs other than http(s) are refused before anything is sent, whether they come as
  keyword arguments, in a request mapping, or as masks.
- download() writes exactly where it was told (never outside the folder it was given, even
  for a hostile task id), atomically (the target is absent or complete, never partial, and
  no temporary file stays), and replaces an existing file only with overwrite=True, even if
  the file appears while the download runs.

Nothing here leaves loopback: "remote" hosts are answered by an httpx.MockTransport.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st
from kling_i2v import (
    ConfigurationError,
    ImageError,
    KlingClient,
    KlingError,
    RequestValidationError,
    Task,
    TaskStatus,
)
from kling_i2v._http import is_loopback
from kling_i2v.testing.assets import sample_video_bytes

from tests.hostile import figures
from tests.hostile.conftest import hostile
from tests.scripted_server import Reply, scripted_server

VIDEO = sample_video_bytes()  # downloads are verified: the body must be a whole MP4

TOKEN = "sk-hostile-targets-0005"
CREATED = {"id": "1", "task_id": "1", "object": "video", "status": "queued", "progress": 0}
QUERY = {"code": "success", "data": {"task_id": "1", "status": "IN_PROGRESS", "progress": "30%"}}
URL_IMAGE = "https://example.com/cat.png"
QUERY_PREFIX = "/kling/v1/videos/image2video/"

tally: Counter[str] = Counter()


_report = figures.report_after("unsafe_targets", lambda: {
    "base_urls_tried": tally["base_urls"],
    "base_urls_refused": tally["base_urls_refused"],
    "token_sent_over_plain_http_to_non_loopback": tally["token_leaks"],
    "redirect_cases": tally["redirects"],
    "task_ids_tried": tally["task_ids"],
    "task_ids_escaping_their_path_segment": tally["task_id_escapes"],
    "image_values_tried": tally["images"],
    "non_http_image_urls_sent": tally["bad_images_sent"],
    "download_cases": tally["downloads"],
    "files_written_outside_the_target": tally["stray_writes"],
    "partial_or_overwritten_files": tally["bad_files"],
})


class Recorder(httpx.BaseTransport):
    """Every host in the world, on a MockTransport: records requests, answers per path."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.seen: list[httpx.Request] = []
        self.redirect_to = redirect_to

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen.append(request)
        if self.redirect_to and len(self.seen) == 1:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        if request.method == "POST":
            return httpx.Response(200, json=CREATED)
        if request.url.path.startswith("/files/"):
            return httpx.Response(200, content=VIDEO)
        return httpx.Response(200, json=QUERY)


# The rule, written as its examples rather than as the client's code (_http.is_loopback),
# so that a change there cannot agree with itself here: the name localhost (any case),
# 127.0.0.0/8 written as a dotted quad, and ::1. Not: trailing dots, other spellings of
# 127.0.0.1 (127.1, 2130706433, 0x7f000001), IPv4-mapped addresses, names under localhost.
_LOOPBACK_V4 = re.compile(r"127\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){2}")


def literal_loopback(host: str) -> bool:
    return host.lower() in ("localhost", "[::1]", "::1") or _LOOPBACK_V4.fullmatch(host) is not None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("LOCALHOST", True),
     ("[::1]", True), ("0.0.0.0", False), ("[::]", False), ("[::ffff:127.0.0.1]", False),
     ("2130706433", False), ("127.1", False), ("0x7f000001", False), ("localhost.", False),
     ("evil.localhost", False), ("localhost.localdomain", False), ("127.0.0.1.nip.io", False),
     ("10.0.0.5", False), ("128.0.0.1", False)],
)
def test_the_clients_loopback_rule_matches_the_examples(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert literal_loopback(host) is loopback


def token_sent_safely(request: httpx.Request) -> bool:
    """The only acceptable ways for the token to travel."""
    if "authorization" not in request.headers:
        return True
    return request.url.scheme == "https" or literal_loopback(request.url.host)


# ============================================================================ the token's way

HOSTS = st.one_of(
    st.sampled_from([
        "127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "[::1]", "api.example.com", "10.0.0.5",
        "192.168.1.1", "0.0.0.0", "[::]", "[::ffff:127.0.0.1]", "2130706433", "127.1", "0x7f000001",
        "localhost.", "localhost.localdomain", "evil.localhost", "127.0.0.1.nip.io",
        "localhost.evil.com", "www.anyfast.ai", "anyfast.ai.evil.com", "xn--e1afmkfd.xn--p1ai",
        "[fe80::1%25eth0]", "169.254.169.254", "[::ffff:7f00:1]",
    ]),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
TRICKS = st.sampled_from(["", "user:pass@", "127.0.0.1@", "localhost:80@", "[::1]@"])
SUFFIXES = st.sampled_from(["", "/", "/v1", "#@127.0.0.1", "?x=@localhost", "/..", "/%2e%2e/"])


@hostile(400)
@given(scheme=st.sampled_from(["http", "https", "HTTP", "ftp", "ws", ""]), trick=TRICKS, host=HOSTS,
       port=st.sampled_from(["", ":80", ":443", ":8080", ":0", ":65535"]), suffix=SUFFIXES,
       via_env=st.booleans())
def test_the_token_goes_over_plain_http_only_to_loopback(
    scheme: str, trick: str, host: str, port: str, suffix: str, via_env: bool
) -> None:
    url = f"{scheme}://{trick}{host}{port}{suffix}" if scheme else f"{trick}{host}{port}{suffix}"
    note(f"base url {url!r} (from the environment: {via_env})")
    tally["base_urls"] += 1
    recorder = Recorder()
    http = httpx.Client(transport=recorder)
    saved = os.environ.get("ANYFAST_BASE_URL")
    try:
        if via_env:
            os.environ["ANYFAST_BASE_URL"] = url
        try:
            client = KlingClient(TOKEN, base_url=None if via_env else url, max_retries=0, http_client=http)
        except ConfigurationError as error:
            tally["base_urls_refused"] += 1
            assert TOKEN not in str(error)
            return
        except (ValueError, TypeError, httpx.InvalidURL):
            # not a URL at all is refused too, if not with the nicest class
            tally["base_urls_refused"] += 1
            return
        with client:
            parsed = httpx.URL(client.base_url)
            if parsed.scheme != "https":
                assert literal_loopback(parsed.host), (
                    f"plain http accepted for {parsed.host!r} (from {url!r}): the system resolver "
                    "decides where that name goes, and it may not be loopback"
                )
            # and on the wire, over a transport that records what would have gone out
            http.base_url = httpx.URL(client.base_url)
            try:
                client.get("1")
                client.create(image=URL_IMAGE, prompt="p")
            except KlingError:
                pass
    finally:
        http.close()
        if saved is None:
            os.environ.pop("ANYFAST_BASE_URL", None)
        else:
            os.environ["ANYFAST_BASE_URL"] = saved
    for request in recorder.seen:
        if not token_sent_safely(request):
            tally["token_leaks"] += 1
            raise AssertionError(f"token sent to {request.url}")


@pytest.mark.parametrize("host", [
    "evil.localhost", "localhost.localdomain", "localhost.", "127.0.0.1.nip.io", "localhost.evil.com",
    "0.0.0.0", "[::]", "[::ffff:127.0.0.1]", "2130706433", "127.1", "0x7f000001", "169.254.169.254",
    "api.example.com", "10.0.0.5",
])
def test_plain_http_to_a_name_that_is_not_certainly_loopback_is_refused(host: str) -> None:
    """Only a literal loopback IP or `localhost` itself: `x.localhost` and friends go to the
    system resolver, which on this machine (glibc, no systemd-resolved) asks DNS for them."""
    tally["base_urls"] += 1
    url = f"http://{host}:8080"
    try:
        KlingClient(TOKEN, base_url=url, http_client=httpx.Client(transport=Recorder())).close()
    except (ConfigurationError, httpx.InvalidURL):
        tally["base_urls_refused"] += 1
        return
    tally["token_leaks"] += 1
    raise AssertionError(f"{url} accepted: the token would go there over plain http")


@hostile(60)
@given(target=st.sampled_from([
    "http://evil.example/steal", "https://evil.example/steal", "http://127.0.0.1:1/other",
    "//evil.example/x", "http://www.anyfast.ai.evil.example/", "https://www.anyfast.ai:444/x",
    "http://www.anyfast.ai/kling/v1/videos/image2video",
]), follow=st.booleans(), call=st.sampled_from(["create", "get", "download"]))
def test_redirects_never_carry_the_token_to_another_origin(target: str, follow: bool, call: str) -> None:
    """The client itself does not follow redirects; a user's http_client may, and then
    httpx must drop the header on the way out of the origin."""
    note(f"redirect to {target!r}, follow={follow}, call={call}")
    tally["redirects"] += 1
    recorder = Recorder(redirect_to=target)
    http = httpx.Client(base_url="https://www.anyfast.ai", transport=recorder, follow_redirects=follow)
    with KlingClient(TOKEN, base_url="https://www.anyfast.ai", max_retries=0, http_client=http) as client:
        try:
            if call == "create":
                client.create(image=URL_IMAGE, prompt="p")
            elif call == "get":
                client.get("1")
            else:
                client.download("https://www.anyfast.ai/files/1.mp4", _scratch() / "v.mp4", overwrite=True)
        except KlingError:
            pass
    first, *rest = recorder.seen
    assert first.url.host == "www.anyfast.ai"
    for request in rest:
        same_origin = (request.url.scheme, request.url.host, request.url.port) == (
            first.url.scheme, first.url.host, first.url.port)
        if (not same_origin or not token_sent_safely(request)) and "authorization" in request.headers:
            tally["token_leaks"] += 1
            raise AssertionError(f"token followed a redirect to {request.url}")


_scratch_dir: list[Path] = []


def _scratch() -> Path:
    if not _scratch_dir:
        import tempfile

        _scratch_dir.append(Path(tempfile.mkdtemp(prefix="hostile-")))
    return _scratch_dir[0]


# ============================================================================ task ids


@hostile(300)
@given(task_id=st.one_of(
    st.text(min_size=1, max_size=30),
    st.sampled_from(["..", ".", "../../etc/passwd", "/", "//evil.example/x", "http://evil.example/",
                     "@evil.example", "1?x=2", "1#frag", "%2e%2e", "1/../../2", "\\..\\x", "1%00",
                     " 1 ", "..;/admin", "\u2025", "\uff0e\uff0e"]),
))
def test_a_task_id_stays_one_path_segment_on_the_gateway(task_id: str) -> None:
    assume(task_id.strip())
    note(f"task id {task_id!r}")
    tally["task_ids"] += 1
    recorder = Recorder()
    http = httpx.Client(base_url="https://www.anyfast.ai", transport=recorder)
    with KlingClient(TOKEN, base_url="https://www.anyfast.ai", max_retries=0, http_client=http) as client:
        try:
            client.get(task_id)
        except KlingError:
            pass
    if not recorder.seen:
        return  # refused before sending
    (request,) = recorder.seen
    raw = request.url.raw_path.decode("ascii").split("?", 1)[0]
    segment = raw[len(QUERY_PREFIX):] if raw.startswith(QUERY_PREFIX) else None
    ok = (request.url.host == "www.anyfast.ai" and request.url.scheme == "https" and segment is not None
          and "/" not in segment and unquote(segment) not in (".", "..") and not request.url.query
          and unquote(segment) == task_id.strip())
    if not ok:
        tally["task_id_escapes"] += 1
    assert ok, f"task id {task_id!r} became {request.url}"


# ============================================================================ image URLs

SCHEMES = st.sampled_from(["ftp", "file", "data", "javascript", "gopher", "s3", "gs", "ws", "wss",
                           "HTTPX", "htp", "hxxp", "mailto", "ssh", "blob", "chrome", "about"])


@hostile(200)
@given(value=st.one_of(
           st.builds("{}://{}".format, SCHEMES, st.sampled_from(["example.com/cat.png", "/etc/passwd",
                                                                 "127.0.0.1/x.png", "%0aalert(1)", "x"])),
           st.sampled_from(["data:image/png;base64,AAAA", "DATA:image/png;base64,AAAA", "data:,x",
                            "https:///x.png", "http://", "https://exa mple.com/a.png",
                            "http://example.com:abc/a.png", "http://\u0000/a.png"]),
       ),
       field=st.sampled_from(["image", "image_tail", "static_mask", "mask"]),
       how=st.sampled_from(["keyword", "mapping"]))
def test_image_urls_other_than_http_are_refused_before_sending(value: str, field: str, how: str) -> None:
    """What `Image.coerce` calls a URL ("scheme://...", "data:...") must be http(s) with a
    host; a request mapping (sent as is) is held to the same rule."""
    note(f"{field} = {value!r}, passed as a {how}")
    tally["images"] += 1
    recorder = Recorder()
    http = httpx.Client(base_url="https://www.anyfast.ai", transport=recorder)
    fields: dict[str, Any] = {"prompt": "p"}
    if field == "mask":
        fields |= {"image": URL_IMAGE,
                   "dynamic_masks": [{"mask": value, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}]}
    else:
        fields[field] = value
        if field == "static_mask":
            fields["image"] = URL_IMAGE
    with (KlingClient(TOKEN, base_url="https://www.anyfast.ai", max_retries=0, http_client=http) as client,
          pytest.raises((ImageError, RequestValidationError))):
        if how == "keyword":
            client.create(**fields)
        else:
            client.create(fields)
    if recorder.seen:
        tally["bad_images_sent"] += 1
    assert recorder.seen == [], f"{value!r} in {field} ({how}) was sent"


@hostile(100)
@given(url=st.sampled_from(["https://example.com/a.png", "HTTP://EXAMPLE.COM/A.PNG", "http://127.0.0.1/x.jpg",
                            "https://example.com/a%20b.png?sig=1&x=2", "https://[::1]:8443/a.png"]),
       field=st.sampled_from(["image", "image_tail"]))
def test_http_image_urls_go_out_exactly_as_given(url: str, field: str) -> None:
    tally["images"] += 1
    recorder = Recorder()
    http = httpx.Client(base_url="https://www.anyfast.ai", transport=recorder)
    with KlingClient(TOKEN, base_url="https://www.anyfast.ai", max_retries=0, http_client=http) as client:
        client.create(**{field: url, "prompt": "p"})
    import json

    assert json.loads(recorder.seen[0].content)[field] == url


# ============================================================================ download targets


def _task(task_id: str, url: str) -> Task:
    return Task(task_id=task_id, status=TaskStatus.SUCCEEDED, progress=100, video_urls=(url,))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@hostile(150)
@given(task_id=st.one_of(
    st.sampled_from(["../escape", "../../escape", "/tmp/hostile-abs", "a/b/c", "..", ".", ".hidden",
                     "x\\..\\y", "con", "v" * 300, "a\x00b", "~/x", "$HOME", "%2e%2e%2fx", " "]),
    st.text(min_size=1, max_size=20),
))
def test_download_into_a_folder_stays_in_that_folder(task_id: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A task id comes from the gateway: `download(task, folder)` names the file after it,
    and a hostile id must not move the file out of the folder."""
    assume(task_id.strip())
    note(f"task id {task_id!r}")
    tally["downloads"] += 1
    root = tmp_path_factory.mktemp("root")
    folder = root / "videos"
    folder.mkdir()
    recorder = Recorder()
    http = httpx.Client(base_url="https://www.anyfast.ai", transport=recorder)
    absolute = Path("/tmp/hostile-abs.mp4")
    absolute_before = absolute.exists()
    try:
        with KlingClient(TOKEN, base_url="https://www.anyfast.ai", max_retries=0, http_client=http) as client:
            try:
                task = _task(task_id, "https://cdn.example/files/v.mp4")
            except ValueError:
                return  # not a task id Task accepts
            try:
                written = client.download(task, folder)
            except (KlingError, OSError):
                written = None
        outside = _files(root) - {"videos"} - {f"videos/{name}" for name in os.listdir(folder)}
        escaped = bool(outside) or (not absolute_before and absolute.exists())
        if written is not None:
            escaped |= written.resolve().parent != folder.resolve()
        if escaped:
            tally["stray_writes"] += 1
        assert not escaped, f"task id {task_id!r}: wrote {written} (outside: {sorted(outside)})"
    finally:
        if not absolute_before:
            absolute.unlink(missing_ok=True)


@hostile(40)
@given(exists=st.booleans(), overwrite=st.booleans(), fail=st.booleans())
def test_download_writes_atomically_and_overwrites_only_when_asked(
    exists: bool, overwrite: bool, fail: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    note(f"exists={exists} overwrite={overwrite} fail={fail}")
    tally["downloads"] += 1
    folder = tmp_path_factory.mktemp("atomic")
    target = folder / "v.mp4"
    if exists:
        target.write_bytes(b"mine")
    body = VIDEO
    with scripted_server() as cdn:
        cdn.script(Reply(500 if fail else 200, body, {"Content-Type": "video/mp4"}, "delay:0.2"),
                   *[Reply(500, b"no")] * 3)
        seen_during: list[bytes | None] = []

        def watch() -> None:
            time.sleep(0.1)  # the server is still delaying its answer
            seen_during.append(target.read_bytes() if target.exists() else None)

        watcher = threading.Thread(target=watch)
        watcher.start()
        with KlingClient(TOKEN, base_url=cdn.base_url, max_retries=0) as client:
            try:
                client.download(cdn.base_url + "/v.mp4", target, overwrite=overwrite)
                outcome = "written"
            except FileExistsError:
                outcome = "exists"
            except KlingError:
                outcome = "failed"
        watcher.join()
    leftovers = sorted(p.name for p in folder.iterdir() if p.name != "v.mp4")
    expected_during = b"mine" if exists else None
    good = leftovers == [] and seen_during == [expected_during]
    if exists and not overwrite:
        good &= outcome == "exists" and target.read_bytes() == b"mine"
    elif fail:
        good &= outcome == "failed" and (target.read_bytes() == b"mine" if exists else not target.exists())
    else:
        good &= outcome == "written" and target.read_bytes() == body
    if not good:
        tally["bad_files"] += 1
    assert good, (exists, overwrite, fail, outcome, leftovers, seen_during)


def test_a_file_that_appears_during_the_download_is_not_replaced(tmp_path: Path) -> None:
    """The existence check is repeated atomically at the end (a hard link, which fails if
    the name is taken): a file created by someone else meanwhile survives."""
    tally["downloads"] += 1
    target = tmp_path / "v.mp4"
    with scripted_server() as cdn:
        cdn.script(Reply(200, VIDEO, {"Content-Type": "video/mp4"}, "delay:0.3"))
        timer = threading.Timer(0.1, lambda: target.write_bytes(b"theirs"))
        timer.start()
        with KlingClient(TOKEN, base_url=cdn.base_url, max_retries=0) as client, \
                pytest.raises(FileExistsError):
            client.download(cdn.base_url + "/v.mp4", target)
        timer.join()
    ok = target.read_bytes() == b"theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    if not ok:
        tally["bad_files"] += 1
    assert ok


def test_a_symlink_at_the_target_is_neither_followed_nor_replaced_without_overwrite(tmp_path: Path) -> None:
    tally["downloads"] += 1
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"precious")
    link = tmp_path / "v.mp4"
    link.symlink_to(elsewhere)
    dangling = tmp_path / "d.mp4"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    with scripted_server() as cdn:
        cdn.script(Reply(200, VIDEO), Reply(200, VIDEO), Reply(200, VIDEO))
        with KlingClient(TOKEN, base_url=cdn.base_url, max_retries=0) as client:
            with pytest.raises(FileExistsError):
                client.download(cdn.base_url + "/v.mp4", link)
            with pytest.raises(FileExistsError):
                client.download(cdn.base_url + "/v.mp4", dangling)
            client.download(cdn.base_url + "/v.mp4", link, overwrite=True)
    ok = (elsewhere.read_bytes() == b"precious" and not link.is_symlink()
          and link.read_bytes() == VIDEO and not (tmp_path / "nowhere").exists())
    if not ok:
        tally["bad_files"] += 1
    assert ok
