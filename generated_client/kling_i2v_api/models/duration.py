from enum import StrEnum


class Duration(StrEnum):
    SECONDS_3 = "3"
    SECONDS_4 = "4"
    SECONDS_5 = "5"
    SECONDS_6 = "6"
    SECONDS_7 = "7"
    SECONDS_8 = "8"
    SECONDS_9 = "9"
    SECONDS_10 = "10"
    SECONDS_11 = "11"
    SECONDS_12 = "12"
    SECONDS_13 = "13"
    SECONDS_14 = "14"
    SECONDS_15 = "15"

    def __str__(self) -> str:
        return str(self.value)
