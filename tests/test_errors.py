"""The error tree and the cleaning of server text."""

from __future__ import annotations

import inspect
import re

import kling_i2v
import pytest
from kling_i2v import errors
from kling_i2v._text import clean

TOKEN = "sk-live-0123456789abcdef"


def test_every_error_class_is_drawn_in_the_tree_and_exported() -> None:
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__ or ""))
    classes = {name for name, value in vars(errors).items()
               if inspect.isclass(value) and issubclass(value, errors.KlingError)}
    assert classes - {"KlingError"} == drawn
    assert classes <= set(kling_i2v.__all__)
    assert kling_i2v.ManifestError is errors.ManifestError
    from kling_i2v.journal import JournalError
    from kling_i2v.manifest import ManifestError
    assert (JournalError, ManifestError) == (errors.JournalError, errors.ManifestError)


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
    assert checked >= 29


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
        (f"sk-live-0123\x1b[0m456789abcdef", "***"),  # a token split by an escape
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
