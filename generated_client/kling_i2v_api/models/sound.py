from enum import StrEnum


class Sound(StrEnum):
    ON = "on"
    OFF = "off"

    def __str__(self) -> str:
        return str(self.value)
