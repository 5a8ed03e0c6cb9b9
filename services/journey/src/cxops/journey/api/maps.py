"""``/v1/journey/maps``: journey maps, versioned, and each held against the stored interactions.

Maps are written by ``ops_lead`` (and ``admin``) and read by every role. Each version records
the key that put it and when; the gateway's audit log records the request itself, as for every
mutation.
"""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.common.validation import UtcDateTime
from cxops.journey import maps
from cxops.journey.formats.journey_map import JourneyMapSpec
from cxops.journey.maps_live import LiveMaps
from cxops.journey.schemas import (
    MAP_KEY_PATTERN,
    ConformancePublic,
    JourneyMapList,
    JourneyMapPublic,
)

#: The span of a conformance answer when the caller gives no ``from``.
CONFORMANCE_DEFAULT_SPAN = timedelta(days=30)

router = APIRouter(tags=["maps"])

MapEditor = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]
MapKeyPath = Annotated[
    str,
    Path(
        pattern=MAP_KEY_PATTERN,
        description="Lower-case letters, digits, `-` and `_`, up to 64, starting alphanumeric.",
    ),
]
VersionQuery = Annotated[
    int | None,
    Query(ge=1, le=2_147_483_647, description="A past version; the latest by default."),
]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


def _not_found(key: str, version: int | None) -> Problem:
    which = f"version {version} of map" if version is not None else "map"
    return Problem(404, f"No {which} {key!r} in this tenant.", slug="map-not-found")


@router.put(
    "/maps/{key}",
    response_model=JourneyMapPublic,
    summary="Create or change a journey map",
    responses={
        201: {"model": JourneyMapPublic, "description": "Created"},
        409: _problem("Other changes to the map kept coming first: try again"),
    },
)
async def put_map(
    key: MapKeyPath,
    payload: JourneyMapSpec,
    caller: MapEditor,
    session: SessionDep,
    state: State,
    response: Response,
) -> JourneyMapPublic:
    """The whole map (the `--map` format of `cxops journey mine`, each stage with its owning
    team, RACI, touchpoints and channels): 201 when the key is new, 200 otherwise. A map that
    differs from the latest version is stored as the next version; the same map again stores
    nothing and answers the latest version."""
    try:
        stored, created = await maps.put_map(
            session=session,
            caller=caller,
            key=key,
            spec=payload,
            now=state.component(LiveMaps).clock(),
        )
    except maps.MapChangedConcurrently as exc:
        raise Problem(409, f"The map {key!r} kept changing; try again.") from exc
    if created:
        response.status_code = 201
    return stored


@router.get("/maps", response_model=JourneyMapList, summary="List journey maps")
async def list_maps(caller: Caller, session: SessionDep) -> JourneyMapList:
    """The latest version of every map of the tenant, by key."""
    return JourneyMapList(items=await maps.list_maps(session=session, caller=caller))


@router.get(
    "/maps/{key}",
    response_model=JourneyMapPublic,
    summary="Read a journey map",
    responses={404: _problem("No such map (or version) in this tenant")},
)
async def get_map(
    key: MapKeyPath, caller: Caller, session: SessionDep, version: VersionQuery = None
) -> JourneyMapPublic:
    """The latest version of the map, or the `version` asked for."""
    try:
        return await maps.get_map(session=session, caller=caller, key=key, version=version)
    except maps.MapNotFound as exc:
        raise _not_found(key, version) from exc


@router.get(
    "/maps/{key}/conformance",
    response_model=ConformancePublic,
    summary="Hold a journey map against the stored interactions",
    responses={404: _problem("No such map (or version) in this tenant")},
)
async def get_conformance(
    key: MapKeyPath,
    caller: Caller,
    session: SessionDep,
    state: State,
    start: Annotated[
        UtcDateTime | None,
        Query(alias="from", description="From this time on; 30 days before `to` by default."),
    ] = None,
    end: Annotated[
        UtcDateTime | None, Query(alias="to", description="Before this time; now by default.")
    ] = None,
    version: VersionQuery = None,
) -> ConformancePublic:
    """The map (its latest version, or `version`) held against the interactions that occurred
    in the range, each customer one journey: fitness, skipped stages, stages out of order,
    loops, unmapped activities, every handoff SLA's breaches, and each stage owner's share.
    The answer names the version it used."""
    end = end or state.component(LiveMaps).clock()
    start = start or end - CONFORMANCE_DEFAULT_SPAN
    if end <= start:
        raise Problem(
            422,
            "`to` must come after `from`.",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {"field": "to", "in": "query", "message": "must be after from", "code": "range"}
            ],
        )
    try:
        return await maps.conformance(
            session=session, caller=caller, key=key, version=version, start=start, end=end
        )
    except maps.MapNotFound as exc:
        raise _not_found(key, version) from exc
