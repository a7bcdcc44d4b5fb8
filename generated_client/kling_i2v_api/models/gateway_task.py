from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.kling_reply import KlingReply


T = TypeVar("T", bound="GatewayTask")


@_attrs_define
class GatewayTask:
    """The gateway's task record (new-api TaskDto)."""

    task_id: str
    """ The gateway's task id: Kling's numeric id, or "task_" and 32 characters from new-api commit ba25ba88 on
    (gateway-facts.md "Create"). The client puts it in a URL path, so it accepts only 1 to 256 printable ASCII
    characters without spaces, and not "." or ".."; the length limit is our guess (no source gives one), set well
    above both known forms. """
    status: str
    """ Open set. Seen: NOT_START, SUBMITTED, QUEUED, IN_PROGRESS, PROCESSING, SUCCESS, FAILURE, FAILED, UNKNOWN.
    Unknown values must be tolerated. """
    action: str | Unset = UNSET
    fail_reason: str | Unset = UNSET
    submit_time: int | Unset = UNSET
    """ Unix seconds. """
    start_time: int | Unset = UNSET
    """ Unix seconds. """
    finish_time: int | Unset = UNSET
    """ Unix seconds. """
    progress: str | Unset = UNSET
    """ Percent as a string with a % sign. """
    result_url: str | Unset = UNSET
    """ The first video's URL, on newer gateway versions. """
    data: KlingReply | None | Unset = UNSET
    """ The upstream Kling reply; null before the upstream answered. """
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.kling_reply import KlingReply  # noqa: PLC0415

        task_id = self.task_id

        status = self.status

        action = self.action

        fail_reason = self.fail_reason

        submit_time = self.submit_time

        start_time = self.start_time

        finish_time = self.finish_time

        progress = self.progress

        result_url = self.result_url

        data: dict[str, Any] | None | Unset
        if isinstance(self.data, Unset):
            data = UNSET
        elif isinstance(self.data, KlingReply):
            data = self.data.to_dict()
        else:
            data = self.data

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "task_id": task_id,
                "status": status,
            }
        )
        if action is not UNSET:
            field_dict["action"] = action
        if fail_reason is not UNSET:
            field_dict["fail_reason"] = fail_reason
        if submit_time is not UNSET:
            field_dict["submit_time"] = submit_time
        if start_time is not UNSET:
            field_dict["start_time"] = start_time
        if finish_time is not UNSET:
            field_dict["finish_time"] = finish_time
        if progress is not UNSET:
            field_dict["progress"] = progress
        if result_url is not UNSET:
            field_dict["result_url"] = result_url
        if data is not UNSET:
            field_dict["data"] = data

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.kling_reply import KlingReply  # noqa: PLC0415

        d = dict(src_dict)
        task_id = d.pop("task_id")

        status = d.pop("status")

        action = d.pop("action", UNSET)

        fail_reason = d.pop("fail_reason", UNSET)

        submit_time = d.pop("submit_time", UNSET)

        start_time = d.pop("start_time", UNSET)

        finish_time = d.pop("finish_time", UNSET)

        progress = d.pop("progress", UNSET)

        result_url = d.pop("result_url", UNSET)

        def _parse_data(data: object) -> KlingReply | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                data_type_0 = KlingReply.from_dict(data)

                return data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(KlingReply | None | Unset, data)

        data = _parse_data(d.pop("data", UNSET))

        gateway_task = cls(
            task_id=task_id,
            status=status,
            action=action,
            fail_reason=fail_reason,
            submit_time=submit_time,
            start_time=start_time,
            finish_time=finish_time,
            progress=progress,
            result_url=result_url,
            data=data,
        )

        gateway_task.additional_properties = d
        return gateway_task

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
