"""The survey kinds, the scale each is answered on, and the thresholds that sort its answers.

NPS asks "how likely are you to recommend us" on 0-10, CSAT "how satisfied were you" on 1-5 and
CES "how easy was it" on 1-7. A promoter answers 9 or 10 and a detractor 0 to 6; a satisfied
customer answers 4 or 5. Feedback (which receives the answers and scores surveys) and scorecard
(which counts them into metrics) both read these, so that the two can never disagree on what a
score means.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class SurveyKind(StrEnum):
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


SCALES: Mapping[SurveyKind, Scale] = {
    SurveyKind.NPS: Scale(0, 10),
    SurveyKind.CSAT: Scale(1, 5),
    SurveyKind.CES: Scale(1, 7),
}

#: NPS: at or above this a promoter, at or below :data:`DETRACTOR_CEILING` a detractor.
PROMOTER_FLOOR = 9
DETRACTOR_CEILING = 6
#: CSAT: at or above this the customer is satisfied.
SATISFIED_FLOOR = 4

ScoreCounts = Mapping[int, int]
"""How many answers gave each score: ``{10: 3, 7: 1}`` is three 10s and one 7."""


def count_answers(kind: SurveyKind, counts: ScoreCounts) -> int:
    """The number of answers, refusing counts that cannot come from ``kind``'s survey."""
    scale = SCALES[kind]
    for score, n in counts.items():
        if not scale.contains(score):
            raise ValueError(f"{kind.value} scores run from {scale}, not {score}")
        if n < 0:
            raise ValueError(f"negative count {n} for score {score}")
    return sum(counts.values())


def nps_groups(counts: ScoreCounts) -> tuple[int, int, int]:
    """Promoters, passives and detractors among NPS answers."""
    promoters = sum(n for score, n in counts.items() if score >= PROMOTER_FLOOR)
    detractors = sum(n for score, n in counts.items() if score <= DETRACTOR_CEILING)
    return promoters, sum(counts.values()) - promoters - detractors, detractors


def count_satisfied(counts: ScoreCounts) -> int:
    """Satisfied customers among CSAT answers."""
    return sum(n for score, n in counts.items() if score >= SATISFIED_FLOOR)
