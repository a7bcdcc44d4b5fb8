"""Sending on a pool this library built: the request goes straight to httpx's transport.

`httpx.Client.send` costs ~150 us of CPU per call on this machine above its transport
(a create over loopback: 350 us through `Client.post`, 200 us through the transport with
the same request; issue 12), in layers a client of this gateway does not use: the auth
flow generator, the cookie jar, event hooks, redirect handling (off here: a redirect
must not carry the token), timing. So for the pool the client made itself, a request is
built as `Client.build_request` builds it and handed to the transport `Client.send`
would pick (`_transport_for_url`: the environment's proxies still apply). What goes on
the wire is the same, byte for byte (tests/test_send.py compares both ways on a socket).

What is left out, and why:
- cookies: the gateway's API is authenticated by its token (gateway-facts.md, Errors: a
  bad key is a 401 from middleware/auth.go@U); that no proxy or CDN in front of it needs a
  cookie sent back is an assumption, no source says so. A cookie a server sets is neither
  stored nor sent, so a hostile server cannot grow a jar or follow the client with one;
- event hooks: a client this library built has none (an `http_client=` given by the
  user is sent through `Client.send`, with its hooks, auth and settings, as before);
- `Response.elapsed`: nothing reads it; the answers handed on are rebuilt in memory.
A closed client is refused before a request is built, on either path (client.py).

httpx logs each request at INFO on the "httpx" logger; the same line is logged here.
`_transport_for_url` is httpx's own (0.27, 0.28); if a version lacks it, every request
takes `Client.send` (slower, the same bytes): tests/test_send.py pins that the pinned
httpx takes this path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from ._http import BearerAuth

__all__ = ["Direct"]

_httpx_log = logging.getLogger("httpx")
_BODY_ARGS = ("content", "data", "files", "json", "params")
_KNOWN_ARGS = frozenset({"method", "url", "headers", *_BODY_ARGS})


class Direct:
    """Builds and sends requests for `http` (a client this library made) beneath its
    `send`; `auth` adds the token where `http.auth` would."""

    __slots__ = ("_auth", "_http", "_transport_for_url", "_urls")

    def __init__(self, http: httpx.Client | httpx.AsyncClient, auth: BearerAuth) -> None:
        self._http = http
        self._auth = auth
        self._transport_for_url: Any = http._transport_for_url
        self._urls: dict[str, httpx.URL] = {}

    @staticmethod
    def usable(http: httpx.Client | httpx.AsyncClient) -> bool:
        return callable(getattr(http, "_transport_for_url", None))

    def build(self, kwargs: Mapping[str, Any], url: httpx.URL | str | None, timeout: httpx.Timeout,
              *, anonymous: bool) -> httpx.Request:
        """What `http.build_request(**kwargs, url=url or kwargs["url"], timeout=timeout)`
        and then `http.auth` (unless `anonymous`) make of it."""
        unknown = kwargs.keys() - _KNOWN_ARGS
        if unknown:  # a generated build_request grew an argument this path does not carry
            raise TypeError(f"_send.Direct cannot carry {sorted(unknown)}: add it here")
        target = self._merge(kwargs["url"]) if url is None else httpx.URL(url)
        headers = self._http.headers.copy()
        extra = kwargs.get("headers")
        if extra:
            headers.update(extra)
        request = httpx.Request(
            kwargs["method"], target, headers=headers,
            extensions={"timeout": timeout.as_dict()},
            **{name: kwargs[name] for name in _BODY_ARGS if name in kwargs},
        )
        if not anonymous:
            self._auth.apply(request)
        elif target.username or target.password:
            # httpx sends a URL's user:password as Basic auth when a request has no auth of
            # its own (Client._build_request_auth, 0.28): a redirect hop's URL may carry them
            next(httpx.BasicAuth(target.username, target.password).auth_flow(request))
        return request

    def send(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self._transport_for_url(request.url).handle_request(request)
        return _received(request, response)

    async def asend(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self._transport_for_url(request.url).handle_async_request(request)
        return _received(request, response)

    def _merge(self, url: str) -> httpx.URL:
        """httpx's `Client._merge_url`: a relative URL is appended to the base URL's path.
        The create's URL is the same every call, so merged URLs are kept (a few, bounded:
        a query's URL holds its task id)."""
        merged = self._urls.get(url)
        if merged is None:
            base = self._http.base_url
            relative = httpx.URL(url)
            merged = (base.copy_with(raw_path=base.raw_path + relative.raw_path.lstrip(b"/"))
                      if relative.is_relative_url else relative)
            if len(self._urls) >= 64:
                self._urls.clear()
            self._urls[url] = merged
        return merged


def _received(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    response.request = request
    if _httpx_log.isEnabledFor(logging.INFO):
        _httpx_log.info('HTTP Request: %s %s "%s %d %s"', request.method, request.url,
                        response.http_version, response.status_code, response.reason_phrase)
    return response
