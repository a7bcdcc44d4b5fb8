from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="CameraControlConfig")


@_attrs_define
class CameraControlConfig:
    """Six movements in [-10, 10]; exactly one of them non-zero."""

    horizontal: float | Unset = UNSET
    """ Horizontal translation. """
    vertical: float | Unset = UNSET
    """ Vertical translation. """
    pan: float | Unset = UNSET
    """ Rotation about the vertical axis. """
    tilt: float | Unset = UNSET
    """ Rotation about the horizontal axis. """
    roll: float | Unset = UNSET
    """ Rotation about the viewing axis. """
    zoom: float | Unset = UNSET
    """ Focal length change. """

    def to_dict(self) -> dict[str, Any]:
        horizontal = self.horizontal

        vertical = self.vertical

        pan = self.pan

        tilt = self.tilt

        roll = self.roll

        zoom = self.zoom

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if horizontal is not UNSET:
            field_dict["horizontal"] = horizontal
        if vertical is not UNSET:
            field_dict["vertical"] = vertical
        if pan is not UNSET:
            field_dict["pan"] = pan
        if tilt is not UNSET:
            field_dict["tilt"] = tilt
        if roll is not UNSET:
            field_dict["roll"] = roll
        if zoom is not UNSET:
            field_dict["zoom"] = zoom

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        horizontal = d.pop("horizontal", UNSET)

        vertical = d.pop("vertical", UNSET)

        pan = d.pop("pan", UNSET)

        tilt = d.pop("tilt", UNSET)

        roll = d.pop("roll", UNSET)

        zoom = d.pop("zoom", UNSET)

        camera_control_config = cls(
            horizontal=horizontal,
            vertical=vertical,
            pan=pan,
            tilt=tilt,
            roll=roll,
            zoom=zoom,
        )

        return camera_control_config
