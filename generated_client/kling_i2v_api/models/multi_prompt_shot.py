from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="MultiPromptShot")


@_attrs_define
class MultiPromptShot:
    index: int
    """ Shot number, from 1. """
    prompt: str
    """ What happens in this shot. """
    duration: str
    """ This shot's length in seconds, as a string ("1" to "15"). """

    def to_dict(self) -> dict[str, Any]:
        index = self.index

        prompt = self.prompt

        duration = self.duration

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "index": index,
                "prompt": prompt,
                "duration": duration,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        index = d.pop("index")

        prompt = d.pop("prompt")

        duration = d.pop("duration")

        multi_prompt_shot = cls(
            index=index,
            prompt=prompt,
            duration=duration,
        )

        return multi_prompt_shot
