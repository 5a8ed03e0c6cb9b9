"""What routing consumes from feedback, and what it does with it.

``cx.feedback.case.opened.v1`` (durable ``routing-feedback-cases``): closed-loop cases become
work. A case that feedback opens (a detractor's answer, say) becomes a task in the queue named
after the case's owning team or, where the tenant has no such queue, in its queue named
``cases``. With neither, the case is left alone: logged and counted
(``cxops_routing_cases_unrouted_total``), not retried, since only a new queue would change the
answer. The task's external id is ``case-<case_id>``, so a redelivered event finds the first
task and stores nothing; the case's id, topic and corrective-action deadline (``action_due_at``,
as the task's ``sla_deadline``, which escalation rules watch) are its attributes.

``cx.feedback.response.received.v1`` (durable ``routing-feedback-responses``): a CSAT answer that
names a task (``task_id``) is the task's CSAT, learned from once (``POST /tasks/{id}/csat``):
the task's stored CSAT is what makes a redelivery change nothing. Other answers are ignored.

``cx.journey.task.requested.v1`` (durable ``routing-journey-tasks``): a proactive trigger's
``create_task`` becomes a task in the queue the trigger names, with its priority and the
skills it prefers. The task's external id is ``journey-<action_id>``: a redelivery finds the
first task. A queue the tenant does not have is refused for good (dead-lettered, where
operators see it): the trigger names it, so only a change to the trigger or the queues helps.

None keeps an inbox (``ConsumerSpec.inbox``): each is idempotent by what it stores, and
commits through the tenant's engine. On a replica that does not own the tenant, the call goes to
the owner's API, as any caller's would; while ownership moves, the event is retried. A payload
that does not fit, or a call the owner refuses for good, is a :class:`PermanentEventError`: it
goes to the dead-letter stream.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.auth import INTERNAL_TOKEN_HEADER, CallerContext, Role, mint_internal_token
from cxops.common.errors import Problem
from cxops.common.events import ConsumerSpec, Event, PermanentEventError
from cxops.common.events.broker import stream_name
from cxops.common.service import ServiceState
from cxops.routing import service
from cxops.routing.changes import QUEUES
from cxops.routing.domain.model import DEFAULT_TIERS
from cxops.routing.events import (
    CASE_OPENED,
    RESPONSE_RECEIVED,
    TASK_REQUESTED,
    CaseOpened,
    ResponseReceived,
    TaskRequested,
)
from cxops.routing.ownership import FORWARDED_HEADER, NotOwner
from cxops.routing.schemas import CsatBody, TaskAttributes, TaskCreate
from cxops.routing.switchboard import LIVE, WORKING, Switchboard

log = logging.getLogger("cxops.routing.consumers")

#: The tenant's queue for cases whose team has no queue of its own.
CASES_QUEUE = "cases"

UNROUTED = Counter(
    "cxops_routing_cases_unrouted_total",
    "Closed-loop cases left alone: neither their team's queue nor a 'cases' queue exists",
)


M = TypeVar("M", bound=BaseModel)


def _read(model: type[M], event: Event) -> M:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise PermanentEventError(f"unreadable {event.type} payload: {exc}") from exc


# ---------------------------------------------------------------------------- cases


def case_task(case: CaseOpened, queue: str) -> TaskCreate:
    attributes: dict[str, Any] = {"case_id": case.case_id, "sla_deadline": case.action_due_at}
    if case.topic is not None:
        attributes["topic"] = case.topic
    return TaskCreate(
        external_id=f"case-{case.case_id}",
        queue=queue,
        customer_ref=case.customer_ref,
        # A tier routing does not know is the standard one, not a reason to drop the case.
        tier=case.tier if case.tier in DEFAULT_TIERS else "standard",
        attributes=TaskAttributes.model_validate(attributes),
    )


def queue_for(case: CaseOpened, queues: Collection[str]) -> str | None:
    """The team's queue, else the tenant's ``cases`` queue, else none."""
    return next((q for q in (case.team, CASES_QUEUE) if q is not None and q in queues), None)


async def on_case_opened(board: Switchboard, session: AsyncSession | None, event: Event) -> None:
    case = _read(CaseOpened, event)
    tenant = event.tenant
    try:
        desk = await board.desk(tenant)
        queue = queue_for(case, desk.queues)
        if queue is not None:
            await service.create_task(board, tenant, case_task(case, queue), idempotency_key=None)
    except NotOwner as moved:
        async with board.db.transaction() as reading:
            queues = set(
                await reading.scalars(sa.select(QUEUES.c.name).where(QUEUES.c.tenant == tenant))
            )
        queue = queue_for(case, queues)
        if queue is not None:
            await call_owner(board, tenant, moved, "/tasks", case_task(case, queue))
    except Problem as refused:
        raise PermanentEventError(f"case {case.case_id}: {refused.detail}") from refused
    if queue is None:
        UNROUTED.inc()
        log.warning(
            "case %s of tenant %s left alone: no queue for team %r nor %r",
            case.case_id,
            tenant,
            case.team,
            CASES_QUEUE,
        )


# ------------------------------------------------------------------------ responses


async def on_response_received(
    board: Switchboard, session: AsyncSession | None, event: Event
) -> None:
    response = _read(ResponseReceived, event)
    if response.kind != "csat" or response.task_id is None:
        return
    tenant, task_id, body = event.tenant, response.task_id, CsatBody(csat=response.score)
    try:
        await service.rate_task(board, tenant, task_id, body, service.stored_task(board.db, tenant))
    except NotOwner as moved:
        await call_owner(board, tenant, moved, f"/tasks/{task_id}/csat", body)
    except Problem as refused:
        if refused.status == 409 and refused.extensions.get("state") in LIVE + WORKING:
            # The answer came before the outcome: once the task is completed, it counts.
            raise RuntimeError(f"task {task_id} is not completed yet; retry") from refused
        raise PermanentEventError(f"CSAT for task {task_id}: {refused.detail}") from refused


# -------------------------------------------------------------------- journey's tasks


def requested_task(request: TaskRequested) -> TaskCreate:
    return TaskCreate(
        external_id=f"journey-{request.action_id}",
        queue=request.queue,
        priority=request.priority,
        optional=request.skills or None,
        customer_ref=request.customer_ref,
        attributes=TaskAttributes.model_validate(
            {"trigger": request.trigger_key, "journey_customer_id": request.customer_id}
        ),
    )


async def on_task_requested(board: Switchboard, session: AsyncSession | None, event: Event) -> None:
    request = _read(TaskRequested, event)
    tenant = event.tenant
    try:
        body = requested_task(request)
    except ValidationError as exc:
        raise PermanentEventError(f"task of action {request.action_id}: {exc}") from exc
    try:
        await service.create_task(board, tenant, body, idempotency_key=None)
    except NotOwner as moved:
        await call_owner(board, tenant, moved, "/tasks", body)
    except Problem as refused:
        raise PermanentEventError(
            f"task of action {request.action_id}: {refused.detail}"
        ) from refused


# --------------------------------------------------------------------- the owner


async def call_owner(
    board: Switchboard, tenant: str, moved: NotOwner, path: str, body: BaseModel
) -> None:
    """POST ``body`` to the tenant's owner at ``/v1/routing{path}``, as the tenant's platform
    would; a refusal that retrying cannot change is permanent, anything else is retried."""
    if moved.url is None:
        raise RuntimeError(f"the owner of tenant {tenant} is moving; retry ({moved.reason})")
    settings = board.settings
    token = mint_internal_token(
        CallerContext(tenant=tenant, role=Role.INTEGRATION, subject="routing:feedback-events"),
        secret=settings.signing_secret,
        ttl_seconds=settings.internal_token_ttl_seconds,
    )
    response = await board.http.post(
        f"{moved.url.rstrip('/')}/v1/routing{path}",
        content=body.model_dump_json(exclude_none=True),
        headers={
            INTERNAL_TOKEN_HEADER: token,
            FORWARDED_HEADER: "1",
            "content-type": "application/json",
        },
    )
    if response.status_code in (200, 201):
        return
    if 400 <= response.status_code < 500 and response.status_code not in (408, 409, 429):
        raise PermanentEventError(f"the owner refused {path}: {response.text}")
    raise RuntimeError(f"the owner answered {response.status_code} to {path}; retry")


def _bound(handler: Any) -> Any:
    def bind(state: ServiceState) -> Any:
        return partial(handler, state.component(Switchboard))

    return bind


FEEDBACK_CASES = ConsumerSpec(
    name="feedback-cases",
    stream=stream_name("feedback"),
    subjects=[CASE_OPENED],
    bind=_bound(on_case_opened),
    inbox=False,
)
FEEDBACK_RESPONSES = ConsumerSpec(
    name="feedback-responses",
    stream=stream_name("feedback"),
    subjects=[RESPONSE_RECEIVED],
    bind=_bound(on_response_received),
    inbox=False,
)
JOURNEY_TASKS = ConsumerSpec(
    name="journey-tasks",
    stream=stream_name("journey"),
    subjects=[TASK_REQUESTED],
    bind=_bound(on_task_requested),
    inbox=False,
)
