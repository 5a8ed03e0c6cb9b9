"""Staffing answered: a request (:mod:`cxops.routing.formats`) through the domain's Erlang C and
Erlang A to the answer (:mod:`cxops.routing.formats` again).

``cxops staffing ... --json`` and ``POST /v1/routing/staffing/...`` both answer through these
functions, so one input cannot give two sets of figures. Pure: no I/O, no framework.
"""

from cxops.routing.domain import erlang_a as erlang_a_domain
from cxops.routing.domain import staffing as erlang_c_domain
from cxops.routing.formats import (
    AbandonmentFigures,
    ErlangARequest,
    ErlangCRequest,
    StaffingFigures,
    StaffingPlan,
    StaffingPlanRequest,
)

#: Raised by :func:`erlang_a` past its ``max_steps``.
TooMuchWork = erlang_a_domain.TooMuchWork


def erlang_c(*, request: ErlangCRequest) -> StaffingFigures:
    """The fewest agents that meet the target, or what ``request.agents`` achieve."""
    demand = request.demand()
    if request.agents is None:
        return StaffingFigures.of(erlang_c_domain.required(demand, request.target()))
    return StaffingFigures.of(
        erlang_c_domain.evaluate(
            demand,
            request.agents,
            answer_seconds=request.target_seconds,
            shrinkage=request.shrinkage,
        )
    )


def erlang_a(*, request: ErlangARequest, max_steps: int | None = None) -> AbandonmentFigures:
    """As :func:`erlang_c`, with customers who hang up; :class:`TooMuchWork` if the calculation
    would take more than ``max_steps`` steps (none: as long as it takes)."""
    demand = request.demand()
    if request.agents is None:
        return AbandonmentFigures.of(
            erlang_a_domain.required(
                demand,
                request.target(),
                patience_seconds=request.patience_seconds,
                max_steps=max_steps,
            )
        )
    return AbandonmentFigures.of(
        erlang_a_domain.evaluate(
            demand,
            request.agents,
            patience_seconds=request.patience_seconds,
            answer_seconds=request.target_seconds,
            shrinkage=request.shrinkage,
            max_steps=max_steps,
        )
    )


def plan(*, request: StaffingPlanRequest) -> StaffingPlan:
    """Every interval sized with Erlang C, and the totals."""
    rows, totals = erlang_c_domain.plan(
        request.rows(), interval_seconds=request.interval_seconds(), target=request.target()
    )
    return StaffingPlan.of(request, rows, totals)
