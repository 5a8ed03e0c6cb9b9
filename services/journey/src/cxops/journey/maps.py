"""Journey maps as a resource: versions put and read, and a map held against the stored
interactions (conformance).

**Versions.** A map's key names every version of it; a PUT that changes the map stores a new
version (the previous ones stay, so a conformance answer can always be repeated with the version
it named), and a PUT of the same map stores nothing. Two PUTs racing on one key both store:
the loser of the insert reads the new latest and tries again.

**Conformance** reads the tenant's interactions in a range and holds them against a version of
the map with :func:`cxops.journey.domain.conformance.check_conformance`, the same code as
``cxops journey mine --map``: each customer is a case, their interactions its events in time
order. Interactions without a resolved customer are left out (each would be a journey of one
event, skipping every stage before its own) and counted in the answer.
"""

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.auth import CallerContext
from cxops.common.errors import Problem, field_path
from cxops.journey.domain.conformance import Conformance, check_conformance
from cxops.journey.domain.journey_map import JourneyMap
from cxops.journey.domain.log import Columns, prepare_log
from cxops.journey.formats.journey_map import JourneyMapSpec
from cxops.journey.maps_repository import MapRepository
from cxops.journey.schemas import (
    ConformancePublic,
    DeviationsPublic,
    JourneyMapPublic,
    MapVersionRef,
    OwnerConformance,
    SlaPublic,
    StageDeviationPublic,
    UnmappedActivitiesPublic,
)

#: A PUT that keeps losing the race for the next version gives up after this many tries.
MAX_ATTEMPTS = 5


class MapNotFound(LookupError):
    """No such map (or version of it) in the caller's tenant."""


class MapChangedConcurrently(Exception):
    """Other PUTs on the key kept winning the next version (answered 409: try again)."""


def invalid_map(spec: JourneyMapSpec) -> Problem | None:
    """The 422 for a map whose types are right but whose content is not (stages named twice,
    an activity in two stages, an SLA that runs backwards...), naming each field as every
    validation error of the API does; ``None`` for a good map."""
    errors = [
        {
            "field": field_path(loc),
            "in": "body",
            "message": message,
            "code": "invalid_journey_map",
        }
        for loc, message in spec.problems()
    ]
    if not errors:
        return None
    fields = ", ".join(sorted({error["field"] for error in errors}))
    return Problem(
        422,
        f"The request is not valid: {fields}",
        slug="validation-error",
        title="Validation failed",
        errors=errors,
    )


def _body(spec: JourneyMapSpec) -> dict[str, Any]:
    """The map as stored: every field, defaults included, so that the same map sent with or
    without its defaults is the same version."""
    return spec.model_dump(mode="json", by_alias=True)


def map_public(row: Row[Any]) -> JourneyMapPublic:
    return JourneyMapPublic.model_validate(
        {
            **row.body,
            "key": row.key,
            "version": row.version,
            "created_at": row.created_at,
            "created_by": row.by,
        },
        strict=False,
    )


def map_of(row: Row[Any]) -> JourneyMap:
    """The domain's map from a stored version (valid when it was stored)."""
    return JourneyMapSpec.model_validate(row.body, strict=False).to_domain()


async def put_map(
    *,
    session: AsyncSession,
    caller: CallerContext,
    key: str,
    spec: JourneyMapSpec,
    now: datetime,
) -> tuple[JourneyMapPublic, bool]:
    """Store ``spec`` as the map's next version unless it is the latest already; the version
    that is now the latest, and whether the key is new."""
    problem = invalid_map(spec)
    if problem is not None:
        raise problem
    body = _body(spec)
    repository = MapRepository(session, tenant=caller.tenant)
    for _ in range(MAX_ATTEMPTS):
        latest = await repository.version(key)
        if latest is not None and latest.body == body:
            return map_public(latest), False
        version = 1 if latest is None else latest.version + 1
        values = {
            "key": key,
            "version": version,
            "body": body,
            "by": caller.subject,
            "created_at": now,
        }
        try:
            async with session.begin_nested():
                await repository.add_version(values)
        except IntegrityError:
            continue  # another PUT took that version: compare with it and go on
        stored = await repository.version(key, version)
        assert stored is not None
        return map_public(stored), latest is None
    raise MapChangedConcurrently(key)


async def get_map(
    *, session: AsyncSession, caller: CallerContext, key: str, version: int | None
) -> JourneyMapPublic:
    row = await MapRepository(session, tenant=caller.tenant).version(key, version)
    if row is None:
        raise MapNotFound(key)
    return map_public(row)


async def list_maps(*, session: AsyncSession, caller: CallerContext) -> list[JourneyMapPublic]:
    rows = await MapRepository(session, tenant=caller.tenant).latest_of_each()
    return [map_public(row) for row in rows]


# ------------------------------------------------------------------------- conformance


async def conformance(
    *,
    session: AsyncSession,
    caller: CallerContext,
    key: str,
    version: int | None,
    start: datetime,
    end: datetime,
) -> ConformancePublic:
    """The map's ``version`` (its latest by default) held against the tenant's interactions
    that occurred in ``[start, end)``."""
    repository = MapRepository(session, tenant=caller.tenant)
    row = await repository.version(key, version)
    if row is None:
        raise MapNotFound(key)
    journey_map = map_of(row)
    interactions = await repository.interactions(start=start, end=end)
    known = [i for i in interactions if i.customer_id is not None]
    # The polars work holds the event loop no longer than a database round trip would.
    checked = await asyncio.to_thread(_check, journey_map, known) if known else None
    return _public(
        checked,
        journey_map,
        ref=MapVersionRef(key=row.key, version=row.version),
        start=start,
        end=end,
        interactions=len(known),
        without_customer=len(interactions) - len(known),
    )


def _check(journey_map: JourneyMap, interactions: list[Row[Any]]) -> Conformance:
    """The interactions as the event log ``cxops journey mine`` prepares (the customer is the
    case), held against the map."""
    frame = pl.DataFrame(
        {
            "case_id": [i.customer_id for i in interactions],
            "activity": [i.activity for i in interactions],
            "timestamp": pl.Series(
                [i.occurred_at for i in interactions], dtype=pl.Datetime("us", "UTC")
            ),
            "team": [i.team for i in interactions],
            "channel": [i.channel for i in interactions],
        }
    )
    log = prepare_log(frame, Columns(team="team", channel="channel"))
    return check_conformance(log, journey_map)


def _public(
    checked: Conformance | None,
    journey_map: JourneyMap,
    *,
    ref: MapVersionRef,
    start: datetime,
    end: datetime,
    interactions: int,
    without_customer: int,
) -> ConformancePublic:
    owner_of = {stage.name: stage.owner_team for stage in journey_map.stages}
    if checked is None:
        deviations = DeviationsPublic(
            skipped_stage=StageDeviationPublic(cases=0, stages={}),
            out_of_order=StageDeviationPublic(cases=0, stages={}),
            loop=StageDeviationPublic(cases=0, stages={}),
            unmapped_activity=UnmappedActivitiesPublic(cases=0, activities={}),
        )
        sla = [
            SlaPublic(
                from_stage=h.from_stage,
                to_stage=h.to_stage,
                sla_seconds=h.sla_seconds,
                owner_team=owner_of[h.from_stage],
                handoffs=0,
                breaches=0,
                breach_share=0.0,
                mean_seconds=None,
                median_seconds=None,
                max_seconds=None,
            )
            for h in journey_map.handoffs
        ]
        cases = fitting = 0
    else:
        found = checked.deviations
        deviations = DeviationsPublic(
            skipped_stage=StageDeviationPublic(**vars(found.skipped_stage)),
            out_of_order=StageDeviationPublic(**vars(found.out_of_order)),
            loop=StageDeviationPublic(**vars(found.loop)),
            unmapped_activity=UnmappedActivitiesPublic(**vars(found.unmapped_activity)),
        )
        sla = [SlaPublic(**vars(s), owner_team=owner_of[s.from_stage]) for s in checked.sla]
        cases, fitting = checked.cases, checked.fitting_cases
    return ConformancePublic(
        map=ref,
        start=start,
        end=end,
        interactions=interactions,
        interactions_without_customer=without_customer,
        cases=cases,
        fitting_cases=fitting,
        fitness=fitting / cases if cases else None,
        deviations=deviations,
        sla=sla,
        owners=_owners(journey_map, deviations, sla),
    )


def _owners(
    journey_map: JourneyMap, deviations: DeviationsPublic, sla: list[SlaPublic]
) -> list[OwnerConformance]:
    """Per stage owner, in the order of their first stage: the deviations at their stages and
    the handoffs that leave them."""
    stages: dict[str | None, list[str]] = defaultdict(list)
    for stage in journey_map.stages:
        stages[stage.owner_team].append(stage.name)
    owners = []
    for owner, names in stages.items():
        leaving = [s for s in sla if s.from_stage in names]
        owners.append(
            OwnerConformance(
                owner_team=owner,
                stages=names,
                skipped_stage=sum(deviations.skipped_stage.stages.get(n, 0) for n in names),
                out_of_order=sum(deviations.out_of_order.stages.get(n, 0) for n in names),
                loop=sum(deviations.loop.stages.get(n, 0) for n in names),
                handoffs=sum(s.handoffs for s in leaving),
                sla_breaches=sum(s.breaches for s in leaving),
            )
        )
    return owners
