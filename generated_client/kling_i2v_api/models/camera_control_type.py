from enum import StrEnum


class CameraControlType(StrEnum):
    SIMPLE = "simple"
    DOWN_BACK = "down_back"
    FORWARD_UP = "forward_up"
    RIGHT_TURN_FORWARD = "right_turn_forward"
    LEFT_TURN_FORWARD = "left_turn_forward"

    def __str__(self) -> str:
        return str(self.value)
