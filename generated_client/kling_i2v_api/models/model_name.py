from enum import StrEnum


class ModelName(StrEnum):
    KLING_V2_MASTER = "kling-v2-master"

    def __str__(self) -> str:
        return str(self.value)
