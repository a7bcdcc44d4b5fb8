from enum import StrEnum


class ModelName(StrEnum):
    KLING_V2_MASTER = "kling-v2-master"
    KLING_V1 = "kling-v1"
    KLING_V1_5 = "kling-v1-5"
    KLING_V1_6 = "kling-v1-6"
    KLING_V2_1 = "kling-v2-1"
    KLING_V2_1_MASTER = "kling-v2-1-master"
    KLING_V2_5_TURBO = "kling-v2-5-turbo"
    KLING_V2_6 = "kling-v2-6"
    KLING_V3 = "kling-v3"

    def __str__(self) -> str:
        return str(self.value)
