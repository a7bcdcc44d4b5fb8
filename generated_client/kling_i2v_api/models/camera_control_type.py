from enum import StrEnum


class CameraControlType(StrEnum):
    DOWN_BACK = "down_back"
    FORWARD_UP = "forward_up"
    LEFT_TURN_FORWARD = "left_turn_forward"
    RIGHT_TURN_FORWARD = "right_turn_forward"
    SIMPLE = "simple"

    def __str__(self) -> str:
        return str(self.value)
