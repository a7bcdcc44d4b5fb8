from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.trajectory_point import TrajectoryPoint


T = TypeVar("T", bound="DynamicMask")


@_attrs_define
class DynamicMask:
    mask: str
    """ Brush mask (raw base64 or URL); must match the image's aspect ratio. """
    trajectories: list[TrajectoryPoint]
    """ The path the masked area follows, 2 to 77 points. """

    def to_dict(self) -> dict[str, Any]:
        mask = self.mask

        trajectories = []
        for trajectories_item_data in self.trajectories:
            trajectories_item = trajectories_item_data.to_dict()
            trajectories.append(trajectories_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "mask": mask,
                "trajectories": trajectories,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.trajectory_point import TrajectoryPoint  # noqa: PLC0415

        d = dict(src_dict)
        mask = d.pop("mask")

        trajectories = []
        _trajectories = d.pop("trajectories")
        for trajectories_item_data in _trajectories:
            trajectories_item = TrajectoryPoint.from_dict(trajectories_item_data)

            trajectories.append(trajectories_item)

        dynamic_mask = cls(
            mask=mask,
            trajectories=trajectories,
        )

        return dynamic_mask
