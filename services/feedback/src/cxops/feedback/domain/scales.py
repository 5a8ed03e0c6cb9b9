"""The survey kinds and the score scale each one is answered on.

NPS asks "how likely are you to recommend us" on 0-10, CSAT "how satisfied were you" on 1-5 and
CES "how easy was it" on 1-7. A score outside its kind's scale is a caller's mistake, refused at
the boundary and, as a second guard, by a check constraint in the database.
"""

from dataclasses import dataclass
from enum import StrEnum


class ResponseKind(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"


@dataclass(frozen=True, slots=True)
class Scale:
    """An inclusive range of whole-number scores."""

    lowest: int
    highest: int

    def contains(self, score: int) -> bool:
        return self.lowest <= score <= self.highest

    def __str__(self) -> str:
        return f"{self.lowest} to {self.highest}"


SCALES: dict[ResponseKind, Scale] = {
    ResponseKind.NPS: Scale(0, 10),
    ResponseKind.CSAT: Scale(1, 5),
    ResponseKind.CES: Scale(1, 7),
}
