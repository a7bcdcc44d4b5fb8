from enum import StrEnum


class ShotType(StrEnum):
    CUSTOMIZE = "customize"
    INTELLIGENCE = "intelligence"

    def __str__(self) -> str:
        return str(self.value)
