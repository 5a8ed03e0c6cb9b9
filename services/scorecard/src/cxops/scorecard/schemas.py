"""What scorecard answers; its tables are never exposed as they are."""

from pydantic import BaseModel, Field

from cxops.stats.scales import SurveyKind


class MetricPublic(BaseModel):
    """One metric's current figure for the caller's tenant."""

    metric: SurveyKind
    value: float | None = Field(
        description=(
            "NPS from -100 to 100, CSAT as a percentage, CES as the mean score; "
            "rounded to two decimals; null when there are no responses."
        )
    )
    responses: int = Field(description="How many answers the value is computed from.")
