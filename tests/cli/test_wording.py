"""The command line's words after a new user's trial: plain words instead of Python's,
and a next step that works (fix round C)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kling_i2v import APIConnectionError
from kling_i2v._http import transport_error
from kling_i2v.cli import ExitCode

from tests.cli.conftest import DEAD_GATEWAY, Cli


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------- C1: wrong port


def test_a_refused_connection_is_said_in_plain_words(make_client: Callable[..., Any]) -> None:
    # both clients: the async one says "All connection attempts failed" and keeps the
    # refused connect one link further down
    client = make_client("a-token-for-tests", base_url=f"http://127.0.0.1:{_free_port()}",
                         max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        client.get("123")
    assert str(caught.value) == "connection to the gateway failed: connection refused"
    assert caught.value.request_sent is False


def test_a_host_name_not_found_is_said_in_plain_words() -> None:
    # no DNS lookup in a test: the chain httpx raises (ConnectError from httpcore's from
    # socket.gaierror), built by hand
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as low:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from low
    except httpx.ConnectError as error:
        result = transport_error(error, None)
    assert str(result) == ("connection to the gateway failed: the host name was not found "
                           "(check its spelling)")


def test_an_error_without_errno_keeps_its_words() -> None:
    result = transport_error(httpx.RemoteProtocolError("Server disconnected"), None)
    assert str(result) == "connection to the gateway failed (RemoteProtocolError: Server disconnected)"


def test_a_wrong_port_says_what_to_check(cli: Cli) -> None:
    port_url = f"http://127.0.0.1:{_free_port()}"
    run = cli("status", "123", "--base-url", port_url, "--token", "a-token-for-tests", connect=False)
    assert run.code == ExitCode.API_ERROR
    assert run.text == (f"kling-i2v: error: connection to the gateway failed: connection refused "
                        f"(gateway: {port_url}); is the gateway running there? check the address "
                        "in --base-url or ANYFAST_BASE_URL")
    assert "Errno" not in run.err


def test_the_environment_gateway_is_named_when_no_option_is(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYFAST_API_KEY", "a-token-for-tests")
    run = cli("status", "123", connect=False)
    assert f"(gateway: {DEAD_GATEWAY}); is the gateway running there?" in run.text
