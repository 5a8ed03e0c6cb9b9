"""``/v1/routing/agents``, ``/queues``, ``/tasks`` and ``/reservations``: the TaskRouter-class API
over the engine. Endpoints only translate: checks and changes are in :mod:`cxops.routing.service`.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from cxops.common.auth import Caller, CallerContext, Role, acting_agent, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.common.validation import UtcDateTime
from cxops.routing import service
from cxops.routing.changes import Offer
from cxops.routing.repository import RoutingRepository
from cxops.routing.schemas import (
    AgentCreate,
    AgentPatch,
    AgentPublic,
    AgentStatus,
    CancelBody,
    CompleteBody,
    CsatBody,
    ExternalId,
    Name,
    QueueCreate,
    QueuePatch,
    QueuePublic,
    ReservationPublic,
    ReservationState,
    StatusUpdate,
    TaskCreate,
    TaskDetail,
    TaskHistoryEntry,
    TaskPublic,
    TaskState,
)
from cxops.routing.schemas import Offer as OfferPublic
from cxops.routing.switchboard import Switchboard, not_found

router = APIRouter()

Staff = Annotated[
    CallerContext, Depends(require_role(Role.SUPERVISOR, Role.OPS_LEAD, Role.INTEGRATION))
]
Presence = Annotated[
    CallerContext, Depends(require_role(Role.SUPERVISOR, Role.INTEGRATION, Role.AGENT))
]
Work = Annotated[
    CallerContext, Depends(require_role(Role.SUPERVISOR, Role.INTEGRATION, Role.AGENT))
]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]


def _board(state: State) -> Switchboard:
    return state.component(Switchboard)


Board = Annotated[Switchboard, Depends(_board)]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _problem("Not found in this tenant")}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _problem("The state does not allow it (the problem says which state)")
}


async def _agent(board: Switchboard, tenant: str, row: dict[str, Any]) -> AgentPublic:
    """The agent with its load from the owner's engine. An endpoint that reads in its session
    first makes sure of the desk (``board.desk``) before that session's first statement: on
    SQLite the session holds the write lock from its first statement, and a desk that has to
    be rebuilt writes through another connection, which would wait for it forever."""
    return AgentPublic(**row, load=await service.agent_load(board, tenant, row["id"]))


def _bound(caller: CallerContext) -> uuid.UUID | None:
    """The agent an agent's key acts as (None for other roles)."""
    bound = acting_agent(caller)
    return uuid.UUID(bound) if bound else None


def _as_self(caller: CallerContext, agent_id: uuid.UUID) -> None:
    """An agent's key acts only as the agent it is bound to; other roles for any agent."""
    bound = acting_agent(caller)
    if bound is not None and bound != str(agent_id):
        raise Problem(403, "An agent's key acts only for its own agent.", slug="forbidden")


def _task(row: dict[str, Any]) -> TaskPublic:
    return TaskPublic.model_validate(row, from_attributes=False)


# --------------------------------------------------------------------------- agents


@router.post(
    "/agents",
    status_code=201,
    response_model=AgentPublic,
    tags=["agents"],
    summary="Register an agent",
    responses=CONFLICT,
)
async def create_agent(body: AgentCreate, caller: Staff, board: Board) -> AgentPublic:
    row = await service.create_agent(board, caller.tenant, body)
    return await _agent(board, caller.tenant, row)


@router.get("/agents", response_model=list[AgentPublic], tags=["agents"], summary="List agents")
async def list_agents(
    caller: Caller,
    session: SessionDep,
    board: Board,
    team: Annotated[Name | None, Query()] = None,
    status: AgentStatus | None = None,
    after: Annotated[
        uuid.UUID | None, Query(description="The last id of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AgentPublic]:
    await board.desk(caller.tenant)  # before the session: a rebuild writes (see _agent)
    rows = await RoutingRepository(session, tenant=caller.tenant).agents(
        team=team, status=status.value if status else None, after=after, limit=limit
    )
    return [await _agent(board, caller.tenant, row) for row in rows]


@router.get(
    "/agents/{agent_id}",
    response_model=AgentPublic,
    tags=["agents"],
    summary="Read an agent",
    responses=NOT_FOUND,
)
async def get_agent(
    agent_id: uuid.UUID, caller: Caller, session: SessionDep, board: Board
) -> AgentPublic:
    await board.desk(caller.tenant)  # before the session: a rebuild writes (see _agent)
    row = await RoutingRepository(session, tenant=caller.tenant).agent(agent_id)
    if row is None:
        raise not_found("agent", agent_id)
    return await _agent(board, caller.tenant, row)


@router.patch(
    "/agents/{agent_id}",
    response_model=AgentPublic,
    tags=["agents"],
    summary="Change an agent's skills, channels or team",
    responses={**NOT_FOUND, **CONFLICT},
)
async def patch_agent(
    agent_id: uuid.UUID, patch: AgentPatch, caller: Staff, board: Board
) -> AgentPublic:
    """A JSON merge patch: ``{"skills": {"billing": 5, "sales": null}}`` sets billing (pinned:
    learning leaves it alone) and removes sales."""
    row = await service.patch_agent(board, caller.tenant, agent_id, patch)
    return await _agent(board, caller.tenant, row)


@router.delete(
    "/agents/{agent_id}",
    status_code=204,
    tags=["agents"],
    summary="Log an agent out for good",
    responses=NOT_FOUND,
)
async def delete_agent(agent_id: uuid.UUID, caller: Staff, board: Board) -> Response:
    """Pending offers are rescinded and the agent's accepted tasks go back to their queues."""
    await service.delete_agent(board, caller.tenant, agent_id)
    return Response(status_code=204)


@router.put(
    "/agents/{agent_id}/status",
    response_model=AgentPublic,
    tags=["agents"],
    summary="Set an agent's presence",
    responses=NOT_FOUND,
)
async def put_status(
    agent_id: uuid.UUID, update: StatusUpdate, caller: Presence, board: Board
) -> AgentPublic:
    _as_self(caller, agent_id)
    row = await service.set_status(board, caller.tenant, agent_id, update)
    return await _agent(board, caller.tenant, row)


@router.get(
    "/agents/{agent_id}/reservations",
    response_model=list[ReservationPublic],
    tags=["reservations"],
    summary="An agent's offers",
    responses=NOT_FOUND,
)
async def agent_reservations(
    agent_id: uuid.UUID,
    caller: Caller,
    session: SessionDep,
    board: Board,
    state: ReservationState | None = None,
) -> list[ReservationPublic]:
    await board.desk(caller.tenant)  # the owner's view, rebuilt if it just took the tenant
    repository = RoutingRepository(session, tenant=caller.tenant)
    if await repository.agent(agent_id) is None:
        raise not_found("agent", agent_id)
    rows = await repository.reservations_of_agent(agent_id, state=state.value if state else None)
    return [ReservationPublic.model_validate(row) for row in rows]


# --------------------------------------------------------------------------- queues


@router.post(
    "/queues",
    status_code=201,
    response_model=QueuePublic,
    tags=["queues"],
    summary="Create a queue",
    responses=CONFLICT,
)
async def create_queue(body: QueueCreate, caller: Staff, board: Board) -> QueuePublic:
    return QueuePublic.model_validate(await service.create_queue(board, caller.tenant, body))


@router.get("/queues", response_model=list[QueuePublic], tags=["queues"], summary="List queues")
async def list_queues(caller: Caller, session: SessionDep) -> list[QueuePublic]:
    rows = await RoutingRepository(session, tenant=caller.tenant).queues()
    return [QueuePublic.model_validate(row) for row in rows]


@router.get(
    "/queues/{queue_id}",
    response_model=QueuePublic,
    tags=["queues"],
    summary="Read a queue",
    responses=NOT_FOUND,
)
async def get_queue(queue_id: uuid.UUID, caller: Caller, session: SessionDep) -> QueuePublic:
    row = await RoutingRepository(session, tenant=caller.tenant).queue(queue_id)
    if row is None:
        raise not_found("queue", queue_id)
    return QueuePublic.model_validate(row)


@router.patch(
    "/queues/{queue_id}",
    response_model=QueuePublic,
    tags=["queues"],
    summary="Change a queue's policy",
    responses=NOT_FOUND,
)
async def patch_queue(
    queue_id: uuid.UUID, patch: QueuePatch, caller: Staff, board: Board
) -> QueuePublic:
    """New tasks follow the change at once; waiting tasks take it at their next step."""
    return QueuePublic.model_validate(
        await service.patch_queue(board, caller.tenant, queue_id, patch)
    )


# ---------------------------------------------------------------------------- tasks


@router.post(
    "/tasks",
    status_code=201,
    response_model=TaskPublic,
    tags=["tasks"],
    summary="Create a task",
    responses=CONFLICT,
)
async def create_task(
    body: TaskCreate,
    caller: Work,
    board: Board,
    state: State,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The task is stored, announced and matched before the answer: a 201 with state
    `reserved` has already been offered. A repeated `external_id` or `Idempotency-Key`
    answers with the first task (`Idempotent-Replayed: true`) and stores nothing."""

    row, replayed = await service.create_task(
        board, caller.tenant, body, idempotency_key=idempotency_key
    )
    headers = {"Location": f"{request.scope['path'].rstrip('/')}/{row['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        _task(row).model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers=headers,
    )


@router.get("/tasks", response_model=list[TaskPublic], tags=["tasks"], summary="List tasks")
async def list_tasks(
    caller: Caller,
    session: SessionDep,
    state: TaskState | None = None,
    queue: Annotated[Name | None, Query()] = None,
    customer_ref: Annotated[ExternalId | None, Query()] = None,
    before: Annotated[
        uuid.UUID | None, Query(description="The last id of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TaskPublic]:
    """Newest first."""
    rows = await RoutingRepository(session, tenant=caller.tenant).tasks(
        state=state.value if state else None,
        queue=queue,
        customer_ref=customer_ref,
        before=before,
        limit=limit,
    )
    return [_task(row) for row in rows]


@router.get(
    "/tasks/{task_id}",
    response_model=TaskDetail,
    tags=["tasks"],
    summary="Read a task with its offers, escalations and relaxations",
    responses=NOT_FOUND,
)
async def get_task(task_id: uuid.UUID, caller: Caller, session: SessionDep) -> TaskDetail:
    repository = RoutingRepository(session, tenant=caller.tenant)
    row = await repository.task(task_id)
    if row is None:
        raise not_found("task", task_id)
    history = [TaskHistoryEntry.model_validate(e) for e in await repository.task_history(task_id)]
    return TaskDetail(
        **_task(row).model_dump(),
        offers=[
            ReservationPublic.model_validate(r)
            for r in await repository.reservations_of_task(task_id)
        ],
        escalations=[e for e in history if e.kind in ("escalated", "supervisor_alert")],
        relaxations=[e for e in history if e.kind == "relaxed"],
        history=history,
    )


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=TaskPublic,
    tags=["tasks"],
    summary="Cancel a task that is not answered yet",
    responses={**NOT_FOUND, **CONFLICT},
)
async def cancel_task(
    task_id: uuid.UUID, caller: Work, board: Board, state: State, body: CancelBody | None = None
) -> TaskPublic:
    row = await service.cancel_task(
        board,
        caller.tenant,
        task_id,
        body or CancelBody(),
        service.stored_task(state.db, caller.tenant),
    )
    return _task(row)


@router.post(
    "/tasks/{task_id}/wrap",
    response_model=TaskPublic,
    tags=["tasks"],
    summary="The agent is wrapping up",
    responses={**NOT_FOUND, **CONFLICT},
)
async def wrap_task(task_id: uuid.UUID, caller: Work, board: Board, state: State) -> TaskPublic:
    """The task keeps the agent's capacity until it is completed."""
    return _task(
        await service.wrap_task(
            board,
            caller.tenant,
            task_id,
            service.stored_task(state.db, caller.tenant),
            _bound(caller),
        )
    )


@router.post(
    "/tasks/{task_id}/complete",
    response_model=TaskPublic,
    tags=["tasks"],
    summary="Report the outcome",
    responses={**NOT_FOUND, **CONFLICT},
)
async def complete_task(
    task_id: uuid.UUID, body: CompleteBody, caller: Work, board: Board, state: State
) -> TaskPublic:
    """Frees the agent's capacity; the outcome feeds proficiency learning."""
    return _task(
        await service.complete_task(
            board,
            caller.tenant,
            task_id,
            body,
            service.stored_task(state.db, caller.tenant),
            _bound(caller),
        )
    )


#: Who reports a customer's CSAT: the platform (or a supervisor), never the agent rated.
Rater = Annotated[CallerContext, Depends(require_role(Role.SUPERVISOR, Role.INTEGRATION))]


@router.post(
    "/tasks/{task_id}/csat",
    response_model=TaskPublic,
    tags=["tasks"],
    summary="Report a CSAT that came after the outcome",
    responses={**NOT_FOUND, **CONFLICT},
)
async def rate_task(
    task_id: uuid.UUID, body: CsatBody, caller: Rater, board: Board, state: State
) -> TaskPublic:
    """For a completed task without a CSAT (the survey answered after the contact): stored and
    learned from once; the same CSAT again is answered as before, another is a 409. Feedback
    responses that name a task (`task_id`) arrive here by event."""
    return _task(
        await service.rate_task(
            board, caller.tenant, task_id, body, service.stored_task(state.db, caller.tenant)
        )
    )


# --------------------------------------------------------------------- reservations


async def _answer(
    reservation_id: uuid.UUID, caller: CallerContext, board: Board, state: Any, *, accept: bool
) -> ReservationPublic:
    async def stored(found: uuid.UUID) -> dict[str, Any] | None:
        async with state.db.transaction() as session:
            return await RoutingRepository(session, tenant=caller.tenant).reservation(found)

    row = await service.answer_offer(
        board,
        caller.tenant,
        reservation_id,
        accept=accept,
        stored=stored,
        agent_only=_bound(caller),
    )
    return ReservationPublic.model_validate(row)


@router.post(
    "/reservations/{reservation_id}/accept",
    response_model=ReservationPublic,
    tags=["reservations"],
    summary="Accept an offer",
    responses={**NOT_FOUND, **CONFLICT},
)
async def accept(
    reservation_id: uuid.UUID, caller: Work, board: Board, state: State
) -> ReservationPublic:
    """Only a pending reservation; otherwise a 409 says why (timed out, rescinded, accepted)."""
    return await _answer(reservation_id, caller, board, state, accept=True)


@router.post(
    "/reservations/{reservation_id}/reject",
    response_model=ReservationPublic,
    tags=["reservations"],
    summary="Reject an offer",
    responses={**NOT_FOUND, **CONFLICT},
)
async def reject(
    reservation_id: uuid.UUID, caller: Work, board: Board, state: State
) -> ReservationPublic:
    """The task goes to the next best agent, never back to this one."""
    return await _answer(reservation_id, caller, board, state, accept=False)


# ----------------------------------------------------------------------- live offers


def _frame(offer: Offer) -> str:
    body = OfferPublic(
        reservation=ReservationPublic.model_validate(offer.reservation),
        task=TaskPublic.model_validate(offer.task),
    )
    return f"id: {offer.reservation['id']}\nevent: offer\ndata: {body.model_dump_json()}\n\n"


@router.get(
    "/agents/{agent_id}/offers",
    tags=["reservations"],
    summary="An agent's offers, live (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND},
)
async def offers(
    agent_id: uuid.UUID,
    caller: Caller,
    board: Board,
    state: State,
    last_event_id: Annotated[uuid.UUID | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Each offer the moment it is made (`event: offer`, `id:` the reservation), with the
    task's attributes; a comment line as a heartbeat. On connecting, the offers still pending
    (after `Last-Event-ID`, when given) come first. An agent whose every stream stays dropped
    longer than the grace period goes offline and its pending offers are rescinded."""
    async with state.db.transaction() as session:
        repository = RoutingRepository(session, tenant=caller.tenant)
        if await repository.agent(agent_id) is None:
            raise not_found("agent", agent_id)
    _as_self(caller, agent_id)
    await board.desk(caller.tenant)  # the owner streams; another replica forwards
    heartbeat = board.settings.stream_heartbeat_seconds

    async def stream() -> AsyncIterator[str]:
        async with board.offers_of(caller.tenant, agent_id) as live:
            sent: set[uuid.UUID] = set()
            async with state.db.transaction() as session:
                repository = RoutingRepository(session, tenant=caller.tenant)
                pending = await repository.reservations_of_agent(
                    agent_id, state="pending", after=last_event_id
                )
                tasks = {row["task_id"]: await repository.task(row["task_id"]) for row in pending}
            yield ": connected\n\n"
            for row in pending:
                task = tasks.get(row["task_id"])
                if task is not None:
                    sent.add(row["id"])
                    yield _frame(Offer(agent_id, row, task))
            while True:
                try:
                    offer = await asyncio.wait_for(live.get(), timeout=heartbeat)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if offer is None:  # this replica no longer owns the tenant: reconnect
                    return
                if offer.reservation["id"] not in sent:
                    yield _frame(offer)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/queues/{queue_id}/statistics",
    tags=["queues"],
    summary="A queue now, and over a window",
    responses=NOT_FOUND,
)
async def queue_statistics(
    queue_id: uuid.UUID,
    caller: Caller,
    session: SessionDep,
    board: Board,
    minutes: Annotated[int | None, Query(ge=1, le=60 * 24 * 31)] = None,
    start: Annotated[UtcDateTime | None, Query(alias="from")] = None,
    end: Annotated[UtcDateTime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """`now`: waiting tasks by priority, the longest wait, eligible agents by status. `window`
    (today in UTC, the last `minutes`, or `from`-`to`): tasks entered, answered, abandoned,
    timed out, service level against the queue's target, mean and p90 speed of answer, offers
    accepted, rejected and timed out, occupancy per agent (definitions in the service README)."""
    await board.desk(caller.tenant)  # before the session: a rebuild writes (see _agent)
    repository = RoutingRepository(session, tenant=caller.tenant)
    queue = await repository.queue(queue_id)
    if queue is None:
        raise not_found("queue", queue_id)
    if minutes is not None:
        end = datetime.now(UTC)
        start = end - timedelta(minutes=minutes)
    return await service.queue_statistics(
        board, caller.tenant, queue, repository, start=start, end=end
    )
