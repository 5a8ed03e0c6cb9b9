"""``/v1/journey/mining-jobs`` and ``/v1/journey/simulation-jobs``: ``cxops journey mine`` and
``cxops journey simulate`` as jobs that any replica runs; the result is the command's
``--json`` output."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.journey import jobs
from cxops.journey.models import Job
from cxops.journey.schemas import JobPublic, MiningJobCreate, SimulationJobCreate

router = APIRouter(tags=["mining jobs"])

Analyst = Annotated[
    CallerContext, Depends(require_role(Role.OPS_LEAD, Role.SUPERVISOR, Role.INTEGRATION))
]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


READ_RESPONSES: dict[int | str, dict[str, object]] = {404: _problem("No such job in this tenant")}
RESULT_RESPONSES: dict[int | str, dict[str, object]] = {
    **READ_RESPONSES,
    200: {"content": {"application/json": {}}, "description": "The command's --json output"},
    409: _problem("The job has not succeeded (`state` says where it is)"),
}
CANCEL_RESPONSES: dict[int | str, dict[str, object]] = {
    **READ_RESPONSES,
    409: _problem("The job is already over"),
}


def _accepted(request: Request, response: Response, job: Job) -> JobPublic:
    response.headers["Location"] = f"{request.scope['path'].rstrip('/')}/{job.id}"
    return jobs.public(job)


@router.post(
    "/mining-jobs",
    status_code=202,
    response_model=JobPublic,
    summary="Mine a log or the stored interactions, as a job",
    responses={422: _problem("A bad request, an unknown event log or map (named)")},
)
async def create_mining_job(
    body: MiningJobCreate,
    caller: Analyst,
    session: SessionDep,
    request: Request,
    response: Response,
) -> JobPublic:
    """Queue `cxops journey mine` over an uploaded log (`{"event_log": id}`) or over the
    tenant's stored interactions (`{"interactions": {"from", "to", "filter"}}`: one case per
    resolved customer, `filter` keeping only the given `channel`s and `activity`s), held
    against the latest version of the journey map `map` if given. `Location` is the job."""
    job = await jobs.create_mining_job(
        session=session, caller=caller, request=body, now=datetime.now(UTC)
    )
    return _accepted(request, response, job)


@router.post(
    "/simulation-jobs",
    status_code=202,
    response_model=JobPublic,
    summary="Simulate a journey model, as a job",
    responses={422: _problem("A model or option the command would refuse (named)")},
)
async def create_simulation_job(
    body: SimulationJobCreate,
    caller: Analyst,
    session: SessionDep,
    request: Request,
    response: Response,
) -> JobPublic:
    """Queue `cxops journey simulate` on `model` (MODEL.json) with the command's options
    (`load`, `hours`, `warmup_hours`, `replications`, `seed`, `breaking_point`)."""
    job = await jobs.create_simulation_job(
        session=session, caller=caller, request=body, now=datetime.now(UTC)
    )
    return _accepted(request, response, job)


def _routes(kind: str) -> None:
    base = f"/{kind}-jobs/{{job_id}}"

    @router.get(
        base,
        name=f"get_{kind}_job",
        response_model=JobPublic,
        summary=f"Read a {kind} job",
        responses=READ_RESPONSES,
    )
    async def get_job(caller: Caller, session: SessionDep, job_id: uuid.UUID) -> JobPublic:
        """Where the job stands: `queued`, `running` (with `progress`, 0..1), `succeeded`,
        `failed` (with `error`) or `canceled`."""
        found = await jobs.get_job(session=session, caller=caller, kind=kind, job_id=job_id)
        return jobs.public(found)

    @router.get(
        f"{base}/result",
        name=f"get_{kind}_job_result",
        response_class=Response,
        summary=f"Read a {kind} job's result",
        responses=RESULT_RESPONSES,
    )
    async def get_result(caller: Caller, session: SessionDep, job_id: uuid.UUID) -> Response:
        """The command's `--json` output for the job's input; 409 until the job succeeded."""
        body = await jobs.get_result(session=session, caller=caller, kind=kind, job_id=job_id)
        return Response(body, media_type="application/json")

    @router.post(
        f"{base}/cancel",
        name=f"cancel_{kind}_job",
        response_model=JobPublic,
        summary=f"Cancel a {kind} job",
        responses=CANCEL_RESPONSES,
    )
    async def cancel_job(caller: Analyst, session: SessionDep, job_id: uuid.UUID) -> JobPublic:
        """A queued job is canceled at once; a running one's worker stops at its next check."""
        canceled = await jobs.cancel_job(
            session=session, caller=caller, kind=kind, job_id=job_id, now=datetime.now(UTC)
        )
        return jobs.public(canceled)


_routes("mining")
_routes("simulation")
