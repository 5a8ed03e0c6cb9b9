"""Every variance requires an action plan with an owner and a due date.

A variance is matched to the open plans recorded for its metric: one not yet due covers it; if
every open plan is past its due date the plan is ``overdue``; with none the plan is ``missing``
and the scorecard says what it needs. A plan marked done does not cover a variance that is still
there: whatever it did was not enough.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

MISSING = "missing: needs an owner and a due date"


class PlanStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class PlanState(StrEnum):
    PRESENT = "present"
    OVERDUE = "overdue"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class ActionPlan:
    metric: str
    owner: str
    due: date
    description: str
    status: PlanStatus = PlanStatus.OPEN


@dataclass(frozen=True, slots=True)
class PlanCheck:
    state: PlanState
    plan: ActionPlan | None
    note: str


def required_plan(metric: str, plans: Sequence[ActionPlan], *, as_of: date) -> PlanCheck:
    """The plan that covers a variance of ``metric`` on ``as_of``, or what is missing."""
    mine = [plan for plan in plans if plan.metric == metric]
    open_plans = sorted(
        (plan for plan in mine if plan.status is PlanStatus.OPEN), key=lambda plan: plan.due
    )
    current = [plan for plan in open_plans if plan.due >= as_of]
    if current:
        plan = current[0]
        return PlanCheck(PlanState.PRESENT, plan, f"{plan.owner}, due {plan.due.isoformat()}")
    if open_plans:
        plan = open_plans[-1]
        late = (as_of - plan.due).days
        return PlanCheck(
            PlanState.OVERDUE,
            plan,
            f"{plan.owner}, due {plan.due.isoformat()}: overdue by {late} days",
        )
    done = " (a plan marked done did not remove the variance)" if mine else ""
    return PlanCheck(PlanState.MISSING, None, MISSING + done)
