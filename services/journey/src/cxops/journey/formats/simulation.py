"""``MODEL.json`` of ``cxops journey simulate`` (and later of the journey API): read into the
domain's :class:`~cxops.journey.domain.simulation.model.JourneyModel`, all-or-nothing, every
problem named by its place in the file (``stages[2].servers``, ``stages[1].routes.billing``).
"""

from pydantic import ValidationError

from cxops.journey.domain.simulation.model import JourneyModel
from cxops.journey.formats import place


class ModelError(ValueError):
    """Every problem of a model, each as (place, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))


def load_model(data: object) -> JourneyModel:
    """Validate decoded JSON into a journey model, or raise :class:`ModelError`."""
    try:
        model = JourneyModel.model_validate(data)
    except ValidationError as exc:
        raise ModelError(
            [(place(error["loc"], whole="model"), error["msg"]) for error in exc.errors()]
        ) from None
    problems = list(model.problems())
    if problems:
        raise ModelError(problems)
    return model
