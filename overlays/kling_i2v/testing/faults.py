"""Faults the fake gateway can inject: what goes wrong, and on which requests.

A `Fault` says what happens to one response. Queued faults (`FaultPlan.inject`) apply to
the next matching requests, first injected first. Random faults (`FaultPlan.set_rates`)
are drawn for API requests (create and query) that no queued fault matched, from a
`random.Random` seeded by the caller, so the same request sequence meets the same faults.

    kind                   what the client sees                        task created?
    status                 an error status with a JSON error body      no
    reset_before_response  the connection reset (RST), no response     no
    drop_after_create      the connection closed, no response          yes (the ambiguous case)
    delay                  the normal response, `seconds` late         as usual
    body                   `content` verbatim with its status/type     no
    truncated_json         the normal response cut in half             as usual
    unknown_status         the normal response, status = `value`       as usual
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from typing import Literal

import attrs

__all__ = ["RATE_KEYS", "Fault", "FaultKind", "FaultPlan", "Target"]

Target = Literal["create", "query", "download", "any"]
FaultKind = Literal[
    "status",
    "reset_before_response",
    "drop_after_create",
    "delay",
    "body",
    "truncated_json",
    "unknown_status",
]


@attrs.frozen
class Fault:
    """One thing that goes wrong with a response. Build it with the class methods."""

    kind: FaultKind
    http_status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    content: bytes = b""
    content_type: str = "application/json"
    value: str = ""

    @classmethod
    def status(cls, http_status: int, retry_after: str | None = None) -> Fault:
        """Answer `http_status` instead of processing the request, in the shape new-api
        answers it (see `replies.status_reply`): 401 and 503 the gateway shape, the others
        the task shape; 429 without Retry-After, as new-api sends it, unless `retry_after`
        sets one (no version of new-api is known to).
        """
        if not 400 <= http_status <= 599:
            raise ValueError("a status fault needs a 4xx or 5xx status")
        return cls("status", http_status=http_status, retry_after=retry_after)

    @classmethod
    def reset_before_response(cls) -> Fault:
        """Reset the connection without answering; nothing is processed."""
        return cls("reset_before_response")

    @classmethod
    def drop_after_create(cls) -> Fault:
        """Process the request (a create makes its task), then close without answering."""
        return cls("drop_after_create")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally after `seconds` of wall-clock time (not scaled)."""
        if seconds < 0:
            raise ValueError("delay seconds must be >= 0")
        return cls("delay", seconds=seconds)

    @classmethod
    def body(cls, content: bytes, status: int = 502, content_type: str = "text/html") -> Fault:
        """Answer `content` verbatim instead of processing the request."""
        return cls("body", http_status=status, content=content, content_type=content_type)

    @classmethod
    def truncated_json(cls) -> Fault:
        """Process the request, then send only the first half of the JSON body."""
        return cls("truncated_json")

    @classmethod
    def unknown_status(cls, value: str = "WEIRD_STATE") -> Fault:
        """Process the request, then report `value` as the task's status."""
        return cls("unknown_status", value=value)


def _html_502() -> Fault:
    return Fault.body(b"<html><body><h1>502 Bad Gateway</h1></body></html>")


# set_rates keys, each with the fault it draws; "5xx" draws 500, 502 or 503.
RATE_KEYS: dict[str, Callable[[], Fault] | None] = {
    "429": lambda: Fault.status(429),
    "500": lambda: Fault.status(500),
    "502": lambda: Fault.status(502),
    "503": lambda: Fault.status(503),
    "5xx": None,
    "reset": Fault.reset_before_response,
    "drop_after_create": Fault.drop_after_create,
    "html": _html_502,
    "truncated_json": Fault.truncated_json,
    "unknown_status": Fault.unknown_status,
}


@attrs.define
class _Queued:
    fault: Fault
    on: Target
    times: int | None  # None: until cleared


class FaultPlan:
    """The queued and random faults of one gateway. Thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._rates: list[tuple[str, float]] = []
        self._rng = random.Random(seed)

    def inject(self, fault: Fault, on: Target = "any", times: int | None = 1) -> None:
        if on not in ("create", "query", "download", "any"):
            raise ValueError(f"on must be create, query, download or any, not {on!r}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None: until cleared)")
        with self._lock:
            self._queue.append(_Queued(fault, on, times))

    def set_rates(self, rates: Mapping[str, float], seed: int) -> None:
        unknown = set(rates) - set(RATE_KEYS)
        if unknown:
            raise ValueError(f"unknown fault rate keys {sorted(unknown)}; known: {list(RATE_KEYS)}")
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        with self._lock:
            self._rates = [(key, rate) for key, rate in rates.items() if rate > 0]
            self._rng = random.Random(seed)

    def clear(self) -> None:
        """Forget queued faults and random rates."""
        with self._lock:
            self._queue.clear()
            self._rates = []

    def take(self, target: Target | None) -> Fault | None:
        """The fault for the next request to `target` (None: a route the API does not have)."""
        with self._lock:
            for queued in self._queue:
                if queued.on == "any" or queued.on == target:
                    if queued.times is not None:
                        queued.times -= 1
                        if queued.times == 0:
                            self._queue.remove(queued)
                    return queued.fault
            if target in ("create", "query") and self._rates:
                return self._draw(target)
        return None

    def _draw(self, target: Target) -> Fault | None:
        point = self._rng.random()
        for key, rate in self._rates:
            if point < rate:
                if key == "drop_after_create" and target != "create":
                    return None
                if key == "5xx":
                    return Fault.status(self._rng.choice((500, 502, 503)))
                make = RATE_KEYS[key]
                assert make is not None
                return make()
            point -= rate
        return None
