"""The error tree (errors.py) and the cleaning and quoting of server text.

Covers: _text.py
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import kling_i2v
import pytest
from kling_i2v import errors
from kling_i2v._text import clean

from tests.conftest import REPO

TOKEN = "sk-live-0123456789abcdef"


# Exceptions of the package that are not errors a caller sees: control flow caught where
# it is raised, or the CLI's and the fake gateway's own. Each is named here so that a new
# exception class anywhere in kling_i2v is either exported or added to this list on purpose.
NOT_LIBRARY_ERRORS = {
    "kling_i2v._engine.Stopping": "the batch engine leaves a row as it is (caught in the engine)",
    "kling_i2v._engine.Fatal": "the engine stops every row; run_batch re-raises the KlingError inside",
    "kling_i2v._imageheader.NeedMore": "the header reader asks for more bytes (caught by its caller)",
    "kling_i2v.cli._exit.Stop": "the CLI ends a command with an exit code (caught in cli._main)",
    "kling_i2v.cli._exit.UsageError": "argparse's refusal, turned into exit code 2 by the CLI",
    "kling_i2v.testing.lifecycle.MarkerError": "the fake gateway's answer to a bad [fake:...] marker",
    "kling_i2v.testing.server.PortInUseError": "the fake gateway's port is taken (an OSError)",
}


def drawn_tree() -> set[str]:
    return set(re.findall(r"[├└]── (\w+)", errors.__doc__ or ""))


def every_exception_class() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of kling_i2v (`__main__` modules run on import)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(kling_i2v.__path__, "kling_i2v."):
        if info.name.endswith(".__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == info.name):
                found[f"{info.name}.{value.__qualname__}"] = value
    return found


def test_every_exported_exception_is_drawn_in_the_tree_and_is_a_kling_error() -> None:
    exported = {name: value for name in kling_i2v.__all__
                if inspect.isclass(value := getattr(kling_i2v, name)) and issubclass(value, BaseException)}
    assert len(exported) >= 32  # a floor: the walk found the tree
    for name, cls in exported.items():
        assert issubclass(cls, kling_i2v.KlingError), name
        assert cls.__module__ == "kling_i2v.errors", f"{name} is defined outside errors.py"
    assert set(exported) - {"KlingError"} == drawn_tree()


def test_the_readme_names_every_exported_error() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Errors", 1)[1].split("\n### ", 1)[0]
    exported = [name for name in kling_i2v.__all__
                if inspect.isclass(value := getattr(kling_i2v, name)) and issubclass(value, BaseException)]
    assert [name for name in exported if not re.search(rf"\b{name}\b", section)] == []


def test_every_exception_class_in_the_package_is_exported_or_named_as_control_flow() -> None:
    found = every_exception_class()
    assert set(NOT_LIBRARY_ERRORS) <= set(found), "a listed class is gone: take it off the list"
    for qualified, cls in found.items():
        if qualified in NOT_LIBRARY_ERRORS:
            continue
        assert getattr(kling_i2v, cls.__name__, None) is cls, f"{qualified} is not exported by kling_i2v"
    # the modules that used to define them import them from errors.py
    from kling_i2v import fit, journal, manifest, tasklog
    assert tasklog.TaskLogError is kling_i2v.TaskLogError and journal.JournalError is errors.JournalError
    assert (fit.MissingExtraError, manifest.ManifestError) == (errors.MissingExtraError, errors.ManifestError)


def test_the_tree_is_drawn_as_it_is() -> None:
    parents = ["KlingError"]
    checked = 0
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*[│ ]*)[├└]── (\w+)", line)
        if not match:
            continue
        depth = (len(match.group(1)) - 4) // 4 + 1
        del parents[depth:]
        cls = getattr(errors, match.group(2))
        assert issubclass(cls, getattr(errors, parents[-1])), line
        parents.append(match.group(2))
        checked += 1
    assert checked >= 31


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Incorrect API key provided: {TOKEN}.", "Incorrect API key provided: ***."),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;pwned title\x07after", "after"),
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("a\x9b2Jb", "ab"),  # 8-bit CSI
        ("bell\x07 nul\x00 del\x7f", "bell nul del"),
        ("line\nnext\ttab\r", "line\nnext\ttab"),
        ("rtl \u202eevil\u202c", "rtl evil"),
        ("cut escape at the end \x1b]0;never ends", "cut escape at the end "),
        ("sk-live-0123\x1b[0m456789abcdef", "***"),  # a token split by an escape
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ],
)
def test_clean_removes_the_token_escapes_and_controls(text: str, expected: str) -> None:
    assert clean(text, secrets=(TOKEN,)) == expected


def test_insufficient_balance_is_still_a_permission_error() -> None:
    error = errors.InsufficientBalanceError("user quota is not enough", status_code=403,
                                            code="insufficient_user_quota")
    assert isinstance(error, errors.PermissionDeniedError)
    assert "top up" in str(error) and "nothing was created" in str(error)


def test_not_a_gateway_names_the_base_url() -> None:
    error = errors.NotAGatewayError(status_code=200, content_type="text/html",
                                    base_url="https://www.anyfast.ai/kling", body="<html>")
    assert "https://www.anyfast.ai/kling" in str(error) and "base URL" in str(error)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("99", '"99"'),
        (2.5, "2.5"),
        (None, "null"),
        (errors.MISSING, "missing"),
        ("x" * 100, '"' + "x" * 39 + "… (100 chars)"),
        (list(range(40)), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1… (40 items)"),
        (b"\x00raw", '"b\'\\\\x00raw\'"'),  # not JSON: its repr, as a JSON string
    ],
)
def test_values_are_quoted_short_in_messages(value: object, quoted: str) -> None:
    assert errors.shorten(value) == quoted
    assert len(errors.shorten("y" * 10_000)) <= 60 + len(" (10000 chars)")


@pytest.mark.parametrize(
    ("body", "glimpse"),
    [
        (('<!doctype html><html lang="en"><head><meta charset="UTF-8" /><title>New API</title></head>'
          '<body><div id="root"></div></body></html>'), '(titled "New API")'),
        ("<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>", '(starting "502 Bad Gateway nginx")'),
        ("", "(empty)"),
        ("<p>" + "word " * 200, "(starting \"word word word"),
    ],
)
def test_a_web_page_is_told_in_a_few_words_with_the_advice_once(body: str, glimpse: str) -> None:
    error = errors.NotAGatewayError(status_code=200, content_type="text/html; charset=utf-8",
                                    base_url="http://127.0.0.1:8765/foo", body=body)
    text = str(error)
    assert text.startswith(f"HTTP 200: the answer is a text/html page {glimpse}"), text
    assert text.count("check the base URL (http://127.0.0.1:8765/foo)") == 1
    assert "<" not in text and len(text) < 260, text
    assert error.body == body  # the page itself stays on the error, for whoever wants it


def test_the_request_id_is_written_one_way() -> None:
    # new-api's own form, "(request id: X)" (common.MessageWithRequestId), for ours too
    error = errors.APIStatusError("upstream failed", status_code=500, code="do_request_failed",
                                  request_id="2026112917431234")
    assert str(error) == "HTTP 500 [do_request_failed]: upstream failed (request id: 2026112917431234)"
    said = errors.APIStatusError("Invalid token (request id: X1)", status_code=401, request_id="X1")
    assert str(said) == "HTTP 401: Invalid token (request id: X1)"
