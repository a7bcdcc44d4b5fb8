from enum import StrEnum


class Mode(StrEnum):
    STD = "std"
    PRO = "pro"

    def __str__(self) -> str:
        return str(self.value)
