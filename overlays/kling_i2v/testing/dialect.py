"""Which gateway the fake imitates where versions of it differ.

anyfast.ai runs a private fork of new-api; new-api itself changed what it writes between
the two commits gateway-facts.md names (`O` = 88b73224, 2026-01-28; `U` = 116255f0,
2026-08-15; boundary `ba25ba88`, 2026-02-10). A client has to cope with every variant,
so the fake can speak each of them:

    dialect      task ids            result_url + U fields   video URL in fail_reason   no balance
    "anyfast"    Kling's, numeric    yes                     no                         insufficient_user_quota
    "new-api-U"  "task_" + 32 chars  yes                     no                         insufficient_user_quota
    "new-api-O"  Kling's, numeric    no                      yes (on success)           quota_not_enough

"anyfast" is the default: numeric ids as anyfast's own reference page shows them
(`000_406f22891bc3c6b7.txt`: "id": "860260753860210752"), the rest as new-api@U writes
it. Which new-api commit anyfast's fork follows is not public: that mix is a decision of
ours, not a fact (reported as such). Use `attrs.evolve(DIALECTS["anyfast"], ...)` for
any other mix.
"""

from __future__ import annotations

import attrs

__all__ = ["DIALECTS", "Dialect", "dialect_named"]


@attrs.frozen
class Dialect:
    """How one gateway version writes the things that changed between versions."""

    name: str
    public_task_ids: bool
    """gateway-facts "Create": from ba25ba88 the gateway's id is "task_" + 32 characters
    (`model.GenerateTaskID`) and Kling's own id only appears in data.data.data.task_id;
    up to O (and in anyfast's docs) the gateway's id is Kling's numeric id."""
    u_fields: bool
    """gateway-facts "Query": TaskDto@U adds id, created_at, updated_at, platform, user_id,
    group, channel_id, quota, properties, result_url (`GetResultURL()` falls back to
    fail_reason, so a failed task's result_url holds the failure text)."""
    video_url_in_fail_reason: bool
    """gateway-facts "Query": up to O the video URL is also written into fail_reason on
    success (`service/task_polling.go@O`)."""
    quota_code: str
    """gateway-facts "Errors": insufficient balance is 403 `insufficient_user_quota` (U) or
    `quota_not_enough` (O)."""
    prompt_always_required: bool
    """gateway-facts "Create": new-api answers 400 "prompt is required" for a body without a
    prompt (`relay/common/relay_utils.go@U`); anyfast's page says a prompt is optional
    when multi_shot is true."""
    action: str
    """The TaskDto `action`. gateway-facts: upstream writes `generate` (`textGenerate` for an
    image_tail without image); anyfast's docs show "<its omni-video path>_POST" for
    their omni route, so "<create path>_POST" here is extrapolated from that one example."""


# name: public_task_ids, u_fields, video_url_in_fail_reason, quota_code,
#       prompt_always_required, action (see the table at the top and Dialect's fields)
_VERSIONS: dict[str, tuple[bool, bool, bool, str, bool, str]] = {
    "anyfast": (False, True, False, "insufficient_user_quota", False, "{path}_POST"),
    "new-api-U": (True, True, False, "insufficient_user_quota", True, "generate"),
    "new-api-O": (False, False, True, "quota_not_enough", True, "generate"),
}
DIALECTS: dict[str, Dialect] = {name: Dialect(name, *row) for name, row in _VERSIONS.items()}


def dialect_named(value: str | Dialect) -> Dialect:
    """A Dialect, or the one of DIALECTS with that name."""
    if isinstance(value, Dialect):
        return value
    try:
        return DIALECTS[value]
    except KeyError:
        raise ValueError(
            f"unknown gateway dialect {value!r}; known: {', '.join(DIALECTS)}"
        ) from None
