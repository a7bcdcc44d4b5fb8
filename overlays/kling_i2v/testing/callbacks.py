"""Status-change callbacks: POST the upstream task object to a task's `callback_url`.

One background thread watches the tasks that have a `callback_url` and, at every status
change (submitted, processing, then succeed or failed), POSTs the upstream task object, with
Kling's own task id,
(`task_id`, `task_status`, `task_status_msg`, `task_info`, `created_at`, `updated_at` and,
on success, `task_result`) as JSON, in order. A change the clock skipped over, on a fast
clock, is still delivered. Only loopback URLs are contacted; any other is recorded as
refused and never touched, so a test can never make the fake reach another machine.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import attrs

from .lifecycle import FakeTask, Phase, SimTime

__all__ = ["CallbackAttempt", "CallbackNotifier", "is_loopback_url"]

_TIMEOUT = 5.0
_INTERVAL = 0.01  # wall-clock seconds between looks at the clock


@attrs.frozen
class CallbackAttempt:
    """One callback the fake tried to deliver."""

    url: str
    task_id: str
    task_status: str
    payload: dict[str, Any]
    status: int | None
    """The HTTP status the receiver answered; None when nothing was answered."""
    error: str | None = None


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then surfaces as an HTTPError


class CallbackNotifier:
    """The background thread that delivers callbacks for the tasks it watches."""

    def __init__(self, clock: SimTime) -> None:
        self._clock = clock
        self._watched: dict[str, tuple[FakeTask, str, int]] = {}  # id -> task, url, phases sent
        self._attempts: list[CallbackAttempt] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="fake-gateway-callbacks", daemon=True
        )
        # no proxies and no redirects: a callback goes to the loopback receiver and nowhere else
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    @property
    def attempts(self) -> list[CallbackAttempt]:
        with self._lock:
            return list(self._attempts)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=_TIMEOUT + 1)

    def watch(self, task: FakeTask) -> None:
        """Deliver `task`'s status changes, if it has a callback_url."""
        if task.callback_url is not None:
            with self._lock:
                self._watched[task.task_id] = (task, task.callback_url, 0)
            self._wake.set()

    def wake(self) -> None:
        """Look at the clock now (a manual clock moved)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                watched = list(self._watched.values())
            # with nothing to deliver, sleep until a task is watched or the clock moves
            self._wake.wait(_INTERVAL if watched else None)
            self._wake.clear()
            now = self._clock.now()
            for task, url, sent in watched:
                self._catch_up(task, url, sent, now)

    def _catch_up(self, task: FakeTask, url: str, sent: int, now: float) -> None:
        # callbacks come from Kling itself (gateway-facts "Rules"), which knows nothing of
        # the gateway's NOT_START: its task is `submitted` from the start
        phases = [Phase.SUBMITTED, Phase.IN_PROGRESS, task.outcome]
        phase = task.phase_at(now)
        reached = 1 if phase is Phase.NOT_START else phases.index(phase) + 1
        for phase in phases[sent:reached]:
            if self._stopping.is_set():
                return
            attempt = self._post(url, task.upstream_task(phase))
            with self._lock:
                self._attempts.append(attempt)
        with self._lock:
            if reached == len(phases):
                del self._watched[task.task_id]
            else:
                self._watched[task.task_id] = (task, url, reached)

    def _post(self, url: str, payload: dict[str, Any]) -> CallbackAttempt:
        def attempt(status: int | None, error: str | None = None) -> CallbackAttempt:
            return CallbackAttempt(
                url, payload["task_id"], payload["task_status"], payload, status, error
            )

        if not is_loopback_url(url):
            return attempt(None, "refused: the fake gateway only calls back loopback URLs")
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "kling-i2v-fake-gateway"},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=_TIMEOUT) as response:
                return attempt(response.status)
        except urllib.error.HTTPError as error:
            return attempt(error.code, f"HTTP {error.code}")
        except (OSError, ValueError) as error:
            return attempt(None, f"{type(error).__name__}: {error}")
