"""`kling-i2v create`: one task from an image and request options, optionally followed
to the end and downloaded."""

from __future__ import annotations

import argparse
from typing import Any

from ..fields import request_fields
from ._context import (
    check_image_paths,
    check_out,
    client,
    request_options,
    wait_command,
)
from ._exit import ExitCode, Stop
from ._media import add_fit_options, fit_for_cli
from ._options import (
    Parser,
    add_allow_unknown_model,
    add_command,
    add_request_options,
    add_save_options,
    add_wait_options,
    help_text,
)
from ._output import Output, task_json
from ._task import follow

__all__ = ["register"]


def register(commands: Any, common: Parser) -> None:
    create = add_command(commands, common, "create", _create, "create a task from an image and a prompt",
                         "Create an image-to-video task and print its id. --wait follows it with a "
                         "progress bar; --out also downloads the video.")
    create.add_argument("image", metavar="IMAGE", help=help_text(request_fields()["image"].help()))
    add_fit_options(create)
    add_request_options(create, skip=("image",), title="request options (from openapi.yaml)")
    add_allow_unknown_model(create)
    after = create.add_argument_group("after creating")
    after.add_argument("--wait", action="store_true", help="wait until the task finishes")
    add_save_options(create, "download the video to FILE (or into a folder); implies --wait")
    add_wait_options(create)


def _create(args: argparse.Namespace, output: Output) -> ExitCode:
    from ..capabilities import capability_warnings
    from ..manifest import check_request
    from ..requests import new_external_task_id

    check_out(args)
    fields = request_options(args, skip=("image",))
    fields["image"] = args.image
    check_image_paths(fields)
    fits: dict[str, str] = {}
    if args.fit:
        fields = fit_for_cli(fields, args, output, fits)
    # ours, not the client's: if the answer is lost, this is how the task is found
    external_task_id = fields.setdefault("external_task_id", new_external_task_id())
    # the request first, so that no warning comes before the error that stops it
    check_request(fields, allow_unknown_model=args.allow_unknown_model)
    warnings = capability_warnings(fields)  # an unlisted model's among them
    for warning in warnings:  # before sending: the user may still stop and change the request
        output.note(f"warning: {warning}", style="yellow")
    # --json: the warnings, and what --fit did to each image (by field), as a batch row has it
    about = {"warnings": warnings, **({"fit": fits} if args.fit else {})}
    with client(args) as kling:
        try:
            task = kling.create(allow_unknown_model=args.allow_unknown_model, **fields)
        except KeyboardInterrupt:
            raise Stop(f"interrupted while the create was in flight: the task may exist "
                       f"(external_task_id {external_task_id})", ExitCode.INTERRUPTED,
                       external_task_id=external_task_id) from None
        # the same two lines whether or not the command goes on to wait: the task id is
        # on stdout (the result) before anything else can go wrong
        if not output.json_mode:
            output.line(f"created task {task.task_id} ({task.status.value})", style="green")
            output.line(f"external id  {external_task_id}")
        if args.wait or args.out:
            return follow(args, output, kling, task, about_create=about)
        output.note(f"follow it with: {wait_command(args, task.task_id)}")
        output.emit({**task_json(task), **about}, lambda out: None)
        return ExitCode.OK
