from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.camera_control_type import CameraControlType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.camera_control_config import CameraControlConfig


T = TypeVar("T", bound="CameraControl")


@_attrs_define
class CameraControl:
    """Camera movement control."""

    type_: CameraControlType
    """ Camera movement; `simple` takes a `config`, the others are preset moves. """
    config: CameraControlConfig | Unset = UNSET
    """ Six movements in [-10, 10]; exactly one of them non-zero. """

    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_.value

        config: dict[str, Any] | Unset = UNSET
        if not isinstance(self.config, Unset):
            config = self.config.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "type": type_,
            }
        )
        if config is not UNSET:
            field_dict["config"] = config

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.camera_control_config import CameraControlConfig  # noqa: PLC0415

        d = dict(src_dict)
        type_ = CameraControlType(d.pop("type"))

        _config = d.pop("config", UNSET)
        config: CameraControlConfig | Unset
        if isinstance(_config, Unset):
            config = UNSET
        else:
            config = CameraControlConfig.from_dict(_config)

        camera_control = cls(
            type_=type_,
            config=config,
        )

        return camera_control
