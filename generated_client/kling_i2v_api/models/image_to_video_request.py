from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.duration import Duration
from ..models.mode import Mode
from ..models.model_name import ModelName
from ..models.shot_type import ShotType
from ..models.sound import Sound
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.camera_control import CameraControl
    from ..models.dynamic_mask import DynamicMask
    from ..models.element import Element
    from ..models.multi_prompt_shot import MultiPromptShot
    from ..models.watermark_info import WatermarkInfo


T = TypeVar("T", bound="ImageToVideoRequest")


@_attrs_define
class ImageToVideoRequest:
    model_name: ModelName | Unset = UNSET
    """ Model name. `kling-v2-master` is the only value on anyfast's reference page for this route
    (reference/000_406f22891bc3c6b7.txt) and the default. The others are the values other new-api based gateways
    document for this same route (see gateway-facts.md, "Models on this route"); anyfast itself documents `kling-v3`
    on text2video and `kling-v1-6` on multi-image2video. Which models a token may use is decided by the gateway: an
    unlisted name is sent only when the caller opts in. """
    image: str | Unset = UNSET
    """ Reference image (first frame). Raw base64 (no `data:` prefix) or an http(s) URL. Formats: .jpg/.jpeg/.png,
    max 10MB, each side at least 300px, aspect ratio 1:2.5 to 2.5:1. """
    image_tail: str | Unset = UNSET
    """ Reference image (end frame), same rules as `image`. At least one of image or image_tail is required. """
    prompt: str | Unset = UNSET
    """ Positive text prompt. Required when multi_shot is false; never empty or blank. """
    negative_prompt: str | Unset = UNSET
    """ Negative text prompt. """
    mode: Mode | Unset = UNSET
    """ std: Standard. pro: Professional (higher quality). """
    duration: Duration | Unset = UNSET
    """ Video duration in seconds (3-15), sent as a JSON string. """
    cfg_scale: float | Unset = 0.5
    """ Prompt relevance (0-1). Higher = stronger adherence. """
    multi_shot: bool | Unset = False
    """ Enable multi-shot storyboarding. """
    shot_type: ShotType | Unset = UNSET
    """ Storyboard method. """
    multi_prompt: list[MultiPromptShot] | Unset = UNSET
    """ Storyboard info (1-6 shots). """
    element_list: list[Element] | Unset = UNSET
    """ Reference elements (max 3). """
    sound: Sound | Unset = UNSET
    """ Generate sound. Only V2.6+. """
    camera_control: CameraControl | Unset = UNSET
    """ Camera movement control. """
    static_mask: str | Unset = UNSET
    """ Static brush mask (raw base64 or URL); must match the image's aspect ratio. """
    dynamic_masks: list[DynamicMask] | Unset = UNSET
    """ Dynamic brush configs (up to 6). """
    watermark_info: WatermarkInfo | Unset = UNSET
    callback_url: str | Unset = UNSET
    """ Receives a POST with the upstream task object on every status change. """
    external_task_id: str | Unset = UNSET
    """ Your own id for the task, unique per account; the client fills in a fresh one when none is given. """

    def to_dict(self) -> dict[str, Any]:
        model_name: str | Unset = UNSET
        if not isinstance(self.model_name, Unset):
            model_name = self.model_name.value

        image = self.image

        image_tail = self.image_tail

        prompt = self.prompt

        negative_prompt = self.negative_prompt

        mode: str | Unset = UNSET
        if not isinstance(self.mode, Unset):
            mode = self.mode.value

        duration: str | Unset = UNSET
        if not isinstance(self.duration, Unset):
            duration = self.duration.value

        cfg_scale = self.cfg_scale

        multi_shot = self.multi_shot

        shot_type: str | Unset = UNSET
        if not isinstance(self.shot_type, Unset):
            shot_type = self.shot_type.value

        multi_prompt: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.multi_prompt, Unset):
            multi_prompt = []
            for multi_prompt_item_data in self.multi_prompt:
                multi_prompt_item = multi_prompt_item_data.to_dict()
                multi_prompt.append(multi_prompt_item)

        element_list: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.element_list, Unset):
            element_list = []
            for element_list_item_data in self.element_list:
                element_list_item = element_list_item_data.to_dict()
                element_list.append(element_list_item)

        sound: str | Unset = UNSET
        if not isinstance(self.sound, Unset):
            sound = self.sound.value

        camera_control: dict[str, Any] | Unset = UNSET
        if not isinstance(self.camera_control, Unset):
            camera_control = self.camera_control.to_dict()

        static_mask = self.static_mask

        dynamic_masks: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.dynamic_masks, Unset):
            dynamic_masks = []
            for dynamic_masks_item_data in self.dynamic_masks:
                dynamic_masks_item = dynamic_masks_item_data.to_dict()
                dynamic_masks.append(dynamic_masks_item)

        watermark_info: dict[str, Any] | Unset = UNSET
        if not isinstance(self.watermark_info, Unset):
            watermark_info = self.watermark_info.to_dict()

        callback_url = self.callback_url

        external_task_id = self.external_task_id

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if model_name is not UNSET:
            field_dict["model_name"] = model_name
        if image is not UNSET:
            field_dict["image"] = image
        if image_tail is not UNSET:
            field_dict["image_tail"] = image_tail
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if negative_prompt is not UNSET:
            field_dict["negative_prompt"] = negative_prompt
        if mode is not UNSET:
            field_dict["mode"] = mode
        if duration is not UNSET:
            field_dict["duration"] = duration
        if cfg_scale is not UNSET:
            field_dict["cfg_scale"] = cfg_scale
        if multi_shot is not UNSET:
            field_dict["multi_shot"] = multi_shot
        if shot_type is not UNSET:
            field_dict["shot_type"] = shot_type
        if multi_prompt is not UNSET:
            field_dict["multi_prompt"] = multi_prompt
        if element_list is not UNSET:
            field_dict["element_list"] = element_list
        if sound is not UNSET:
            field_dict["sound"] = sound
        if camera_control is not UNSET:
            field_dict["camera_control"] = camera_control
        if static_mask is not UNSET:
            field_dict["static_mask"] = static_mask
        if dynamic_masks is not UNSET:
            field_dict["dynamic_masks"] = dynamic_masks
        if watermark_info is not UNSET:
            field_dict["watermark_info"] = watermark_info
        if callback_url is not UNSET:
            field_dict["callback_url"] = callback_url
        if external_task_id is not UNSET:
            field_dict["external_task_id"] = external_task_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.camera_control import CameraControl  # noqa: PLC0415
        from ..models.dynamic_mask import DynamicMask  # noqa: PLC0415
        from ..models.element import Element  # noqa: PLC0415
        from ..models.multi_prompt_shot import MultiPromptShot  # noqa: PLC0415
        from ..models.watermark_info import WatermarkInfo  # noqa: PLC0415

        d = dict(src_dict)
        _model_name = d.pop("model_name", UNSET)
        model_name: ModelName | Unset
        if isinstance(_model_name, Unset):
            model_name = UNSET
        else:
            model_name = ModelName(_model_name)

        image = d.pop("image", UNSET)

        image_tail = d.pop("image_tail", UNSET)

        prompt = d.pop("prompt", UNSET)

        negative_prompt = d.pop("negative_prompt", UNSET)

        _mode = d.pop("mode", UNSET)
        mode: Mode | Unset
        if isinstance(_mode, Unset):
            mode = UNSET
        else:
            mode = Mode(_mode)

        _duration = d.pop("duration", UNSET)
        duration: Duration | Unset
        if isinstance(_duration, Unset):
            duration = UNSET
        else:
            duration = Duration(_duration)

        cfg_scale = d.pop("cfg_scale", UNSET)

        multi_shot = d.pop("multi_shot", UNSET)

        _shot_type = d.pop("shot_type", UNSET)
        shot_type: ShotType | Unset
        if isinstance(_shot_type, Unset):
            shot_type = UNSET
        else:
            shot_type = ShotType(_shot_type)

        _multi_prompt = d.pop("multi_prompt", UNSET)
        multi_prompt: list[MultiPromptShot] | Unset = UNSET
        if _multi_prompt is not UNSET:
            multi_prompt = []
            for multi_prompt_item_data in _multi_prompt:
                multi_prompt_item = MultiPromptShot.from_dict(multi_prompt_item_data)

                multi_prompt.append(multi_prompt_item)

        _element_list = d.pop("element_list", UNSET)
        element_list: list[Element] | Unset = UNSET
        if _element_list is not UNSET:
            element_list = []
            for element_list_item_data in _element_list:
                element_list_item = Element.from_dict(element_list_item_data)

                element_list.append(element_list_item)

        _sound = d.pop("sound", UNSET)
        sound: Sound | Unset
        if isinstance(_sound, Unset):
            sound = UNSET
        else:
            sound = Sound(_sound)

        _camera_control = d.pop("camera_control", UNSET)
        camera_control: CameraControl | Unset
        if isinstance(_camera_control, Unset):
            camera_control = UNSET
        else:
            camera_control = CameraControl.from_dict(_camera_control)

        static_mask = d.pop("static_mask", UNSET)

        _dynamic_masks = d.pop("dynamic_masks", UNSET)
        dynamic_masks: list[DynamicMask] | Unset = UNSET
        if _dynamic_masks is not UNSET:
            dynamic_masks = []
            for dynamic_masks_item_data in _dynamic_masks:
                dynamic_masks_item = DynamicMask.from_dict(dynamic_masks_item_data)

                dynamic_masks.append(dynamic_masks_item)

        _watermark_info = d.pop("watermark_info", UNSET)
        watermark_info: WatermarkInfo | Unset
        if isinstance(_watermark_info, Unset):
            watermark_info = UNSET
        else:
            watermark_info = WatermarkInfo.from_dict(_watermark_info)

        callback_url = d.pop("callback_url", UNSET)

        external_task_id = d.pop("external_task_id", UNSET)

        image_to_video_request = cls(
            model_name=model_name,
            image=image,
            image_tail=image_tail,
            prompt=prompt,
            negative_prompt=negative_prompt,
            mode=mode,
            duration=duration,
            cfg_scale=cfg_scale,
            multi_shot=multi_shot,
            shot_type=shot_type,
            multi_prompt=multi_prompt,
            element_list=element_list,
            sound=sound,
            camera_control=camera_control,
            static_mask=static_mask,
            dynamic_masks=dynamic_masks,
            watermark_info=watermark_info,
            callback_url=callback_url,
            external_task_id=external_task_id,
        )

        return image_to_video_request
