"""The parser reads its defaults from the library instead of repeating them: each test
changes a library default and expects the command line to follow."""

from __future__ import annotations

import attrs
import kling_i2v.batch
import kling_i2v.client
import kling_i2v.polling
import pytest
from kling_i2v.batch import BatchOptions
from kling_i2v.cli import main
from kling_i2v.cli import _batch, _create, _fake, _media
from kling_i2v.cli._exit import UsageError
from kling_i2v.cli._parser import COMMAND_MODULES, COMMANDS, build_parser, command_module, parse_args


def test_wait_timeout_and_poll_interval_are_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kling_i2v.client, "DEFAULT_WAIT_TIMEOUT", 77.0)
    monkeypatch.setattr(kling_i2v.polling.PollPolicy, "__init__",
                        _with_default(kling_i2v.polling.PollPolicy.__init__, max_interval=3.5))
    for command in (["wait", "t1"], ["download", "t1"], ["create", "cat.png"]):
        args = build_parser().parse_args(command)
        assert (args.timeout, args.poll_interval) == (77.0, 3.5), command


def test_batch_defaults_are_batch_options(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    @attrs.frozen
    class Other(BatchOptions):
        concurrency: int = 13
        poll_concurrency: int = 14
        download_concurrency: int = 15
        poll_interval: float = 16.5
        max_attempts: int = 17
        timeout: float | None = 18.0
        max_running: int | None = 19

    monkeypatch.setattr(kling_i2v.batch, "BatchOptions", Other)
    args = build_parser().parse_args(["batch", "m.csv", "--out", "v"])
    assert (args.concurrency, args.poll_concurrency, args.download_concurrency,
            args.poll_interval, args.max_attempts, args.timeout, args.max_running) == (
        13, 14, 15, 16.5, 17, 18.0, 19)
    assert main(["batch", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 13)", "(default: 14)", "(default: 15)", "(default: 16.5)",
                  "(default: 17)", "(default: 18)"):
        assert shown in text


def test_base_url_help_is_the_clients(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(kling_i2v.client, "DEFAULT_BASE_URL", "https://gateway.example")
    assert main(["status", "--help"]) == 0
    assert "else https://gateway.example" in " ".join(capsys.readouterr().out.split())


def test_fake_gateway_defaults_are_the_fakes(capsys: pytest.CaptureFixture[str]) -> None:
    import inspect

    from kling_i2v.testing import FakeGateway

    defaults = inspect.signature(FakeGateway).parameters
    assert main(["fake-gateway", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {', '.join(defaults['tokens'].default)})" in text
    assert f"simulated seconds (default: {defaults['task_seconds'].default:g})" in text


def test_building_the_parser_does_not_import_the_fake_gateway() -> None:
    import subprocess
    import sys

    code = ("import sys; from kling_i2v.cli._parser import build_parser; build_parser(); "
            "print('kling_i2v.testing.server' in sys.modules)")  # _cli, the flags, is light
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_every_command_module_registers_itself() -> None:
    names = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert names == {"create", "status", "wait", "download", "batch", "gallery", "fake-gateway"}
    assert all(callable(getattr(command_module(name), "register", None)) for name in COMMANDS)


def _with_default(init, **changed):  # type: ignore[no-untyped-def]
    def patched(self, **kwargs):  # type: ignore[no-untyped-def]
        init(self, **{**changed, **kwargs})

    return patched


def test_each_module_registers_exactly_the_commands_the_map_gives_it() -> None:
    for module in COMMANDS:
        only = build_parser(only=module)
        names = set(only._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
        assert names == {name for name, m in COMMAND_MODULES.items() if m == module}, module
    assert set(COMMAND_MODULES.values()) == set(COMMANDS)


def test_a_command_line_builds_only_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_needed(*args: object) -> None:
        raise AssertionError("built for a command that was not asked for")

    for module in (_create, _batch, _fake, _media):
        monkeypatch.setattr(module, "register", not_needed)
    args = parse_args(["--json", "status", "12345"])
    assert args.json is True and args.task_id == "12345"


def test_a_value_that_reads_like_a_command_falls_back_to_the_whole_parser() -> None:
    # the token's value is "create": the create-only parser refuses "status", the whole
    # one reads the line as it is
    args = parse_args(["--token", "create", "status", "12345"])
    assert args.token == "create" and args.task_id == "12345"
    with pytest.raises(UsageError, match="invalid choice: 'stauts'"):
        parse_args(["stauts", "12345"])


def test_help_of_a_command_is_the_same_from_its_own_parser(capsys: pytest.CaptureFixture[str]) -> None:
    helps = []
    for parse in (parse_args, lambda a: build_parser().parse_args(a)):
        with pytest.raises(SystemExit):
            parse(["create", "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1] and "--prompt" in helps[0]
