from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Element")


@_attrs_define
class Element:
    element_id: int
    """ Id of a reference element from the element library. """

    def to_dict(self) -> dict[str, Any]:
        element_id = self.element_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "element_id": element_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        element_id = d.pop("element_id")

        element = cls(
            element_id=element_id,
        )

        return element
