from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="VideoTask")


@_attrs_define
class VideoTask:
    """The gateway's OpenAI-style video object returned by the create call."""

    task_id: str
    """ The gateway's task id: Kling's numeric id, or "task_" and 32 characters from new-api commit ba25ba88 on
    (gateway-facts.md "Create"). The client puts it in a URL path, so it accepts only 1 to 256 printable ASCII
    characters without spaces, and not "." or ".."; the length limit is our guess (no source gives one), set well
    above both known forms. """
    id: str | Unset = UNSET
    """ Same as task_id. """
    object_: str | Unset = UNSET
    model: str | Unset = UNSET
    status: str | Unset = UNSET
    """ Open set; `queued` right after creation. """
    progress: int | Unset = UNSET
    created_at: int | Unset = UNSET
    """ Unix seconds. """
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        task_id = self.task_id

        id = self.id

        object_ = self.object_

        model = self.model

        status = self.status

        progress = self.progress

        created_at = self.created_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "task_id": task_id,
            }
        )
        if id is not UNSET:
            field_dict["id"] = id
        if object_ is not UNSET:
            field_dict["object"] = object_
        if model is not UNSET:
            field_dict["model"] = model
        if status is not UNSET:
            field_dict["status"] = status
        if progress is not UNSET:
            field_dict["progress"] = progress
        if created_at is not UNSET:
            field_dict["created_at"] = created_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        task_id = d.pop("task_id")

        id = d.pop("id", UNSET)

        object_ = d.pop("object", UNSET)

        model = d.pop("model", UNSET)

        status = d.pop("status", UNSET)

        progress = d.pop("progress", UNSET)

        created_at = d.pop("created_at", UNSET)

        video_task = cls(
            task_id=task_id,
            id=id,
            object_=object_,
            model=model,
            status=status,
            progress=progress,
            created_at=created_at,
        )

        video_task.additional_properties = d
        return video_task

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
