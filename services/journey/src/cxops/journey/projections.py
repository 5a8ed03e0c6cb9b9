"""Journey's own projection of other services' facts about customers: feedback's responses and
closed-loop cases, routing's tasks, each one row of ``journey_customer_facts``.

Consumers ``journey-feedback-facts`` (``CX_FEEDBACK``: ``response.received``,
``response.enriched``, every ``case.*``) and ``journey-routing-facts`` (``CX_ROUTING``:
``task.created|assigned|completed|canceled|abandoned``). Each event is one update of the fact
it is about, folded in by :func:`cxops.journey.domain.facts.apply`: an event older than the
fact's last one never overwrites newer state. The inbox makes a redelivery change nothing. An
event that names no customer, about a fact not known yet, is acknowledged and dropped: there is
nobody to show it to (routing's task events after ``created`` do not repeat the customer). An
unreadable payload goes to the dead letters.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.events import ConsumerSpec, Event
from cxops.common.events.broker import stream_name
from cxops.common.events.consumer import PermanentEventError
from cxops.common.tenancy import TenantRepository
from cxops.journey import events
from cxops.journey.domain import facts
from cxops.journey.domain.facts import CASE, RESPONSE, TASK, Fact, FactUpdate
from cxops.journey.models import CustomerFact


def _response(payload: events.ResponseReceived, state: str) -> FactUpdate:
    fields: dict[str, Any] = {
        "survey_kind": payload.kind,
        "score": payload.score,
        "channel": payload.channel,
        "task_id": payload.task_id,
        "agent_id": payload.agent_id,
    }
    if isinstance(payload, events.ResponseEnriched):
        fields |= {
            "comment": payload.comment,
            "language": payload.language,
            "sentiment": payload.sentiment and payload.sentiment.model_dump(mode="json"),
        }
    # Both events carry the answer's own time: the states' order decides between them.
    return FactUpdate(
        kind=RESPONSE,
        ref_id=payload.response_id,
        customer_ref=payload.customer_ref,
        at=payload.occurred_at,
        state=state,
        fields=fields,
        started_at=payload.occurred_at,
    )


def _case(payload: events.CaseChanged) -> FactUpdate:
    fields = payload.model_dump(
        mode="json", exclude={"case_id", "state", "customer_ref", "seconds_since_open"}
    )
    breach = None
    if isinstance(payload, events.CaseBreached):
        for name in ("clock", "deadline", "breach_round"):
            fields.pop(name)
        breach = {
            "clock": payload.clock,
            "deadline": payload.deadline.isoformat(),
            "round": payload.breach_round,
        }
    return FactUpdate(
        kind=CASE,
        ref_id=payload.case_id,
        customer_ref=payload.customer_ref,
        # Case events carry no time of their own: the change happened this long after opening.
        at=payload.opened_at + timedelta(seconds=payload.seconds_since_open),
        state=payload.state,
        fields=fields,
        started_at=payload.opened_at,
        breach=breach,
    )


def _task_created(payload: events.TaskCreated) -> FactUpdate:
    return FactUpdate(
        kind=TASK,
        ref_id=payload.task_id,
        customer_ref=payload.customer_ref,
        at=payload.created_at,
        state="created",
        fields={"queue": payload.queue, "channel": payload.channel, "case_id": payload.case_id},
        started_at=payload.created_at,
    )


def _task_assigned(payload: events.TaskAssigned) -> FactUpdate:
    return FactUpdate(
        kind=TASK,
        ref_id=payload.task_id,
        customer_ref=None,
        at=payload.assigned_at,
        state="assigned",
        fields={
            "agent_id": payload.agent_id,
            "team": payload.team,
            "queue": payload.queue,
            "wait_seconds": payload.wait_seconds,
            "assigned_at": payload.assigned_at.isoformat(),
        },
    )


def _task_completed(payload: events.TaskCompleted) -> FactUpdate:
    return FactUpdate(
        kind=TASK,
        ref_id=payload.task_id,
        customer_ref=payload.customer_ref,
        at=payload.completed_at,
        state="completed",
        fields={
            "agent_id": payload.agent_id,
            "team": payload.team,
            "queue": payload.queue,
            "channel": payload.channel,
            "wait_seconds": payload.wait_seconds,
            "handle_seconds": payload.handle_seconds,
            "resolved": payload.resolved,
            "csat": payload.csat,
            "ended_at": payload.completed_at.isoformat(),
        },
    )


def _task_canceled(payload: events.TaskCanceled) -> FactUpdate:
    return FactUpdate(
        kind=TASK,
        ref_id=payload.task_id,
        customer_ref=None,
        at=payload.canceled_at,
        state="canceled",
        fields={
            "reason": payload.reason,
            "wait_seconds": payload.waited_seconds,
            "ended_at": payload.canceled_at.isoformat(),
        },
    )


def _task_abandoned(payload: events.TaskAbandoned) -> FactUpdate:
    return FactUpdate(
        kind=TASK,
        ref_id=payload.task_id,
        customer_ref=None,
        at=payload.abandoned_at,
        state="abandoned",
        fields={
            "wait_seconds": payload.waited_seconds,
            "ended_at": payload.abandoned_at.isoformat(),
        },
    )


_UPDATES: dict[str, Callable[[Any], FactUpdate]] = {
    events.RESPONSE_RECEIVED: lambda payload: _response(payload, "received"),
    events.RESPONSE_ENRICHED: lambda payload: _response(payload, "enriched"),
    **{subject: _case for subject in events.CASE_SUBJECTS},
    events.TASK_CREATED: _task_created,
    events.TASK_ASSIGNED: _task_assigned,
    events.TASK_COMPLETED: _task_completed,
    events.TASK_CANCELED: _task_canceled,
    events.TASK_ABANDONED: _task_abandoned,
}


def fact_update(event: Event) -> FactUpdate:
    """The update ``event`` makes to its fact; :class:`PermanentEventError` if unreadable."""
    model: type[BaseModel] = events.CONSUMED[event.subject]
    try:
        payload = model.model_validate(event.data)
    except ValidationError as exc:
        raise PermanentEventError(f"unreadable {event.subject}: {exc}") from exc
    return _UPDATES[event.subject](payload)


class FactRepository(TenantRepository):
    async def for_update(self, kind: str, ref_id: str) -> CustomerFact | None:
        """The fact, locked until the transaction ends where the database can (two replicas
        handling two events of one task take turns)."""
        found: CustomerFact | None = await self.session.scalar(
            self.select(CustomerFact)
            .where(CustomerFact.kind == kind, CustomerFact.ref_id == ref_id)
            .with_for_update()
        )
        return found


def stored(fact: Fact) -> dict[str, Any]:
    """A fact's ``payload`` column: its ``fields``, each field's ``versions`` and its
    ``breaches`` (a case's breached clocks)."""
    return {
        "fields": dict(fact.payload),
        "versions": {name: [at.isoformat(), rank] for name, (at, rank) in fact.versions.items()},
        "breaches": [dict(breach) for breach in fact.breaches],
    }


def loaded(row: CustomerFact) -> Fact:
    return Fact(
        customer_ref=row.customer_ref,
        occurred_at=row.occurred_at,
        state=row.state,
        payload=row.payload["fields"],
        last_event_at=row.last_event_at,
        versions={
            name: (datetime.fromisoformat(at), rank)
            for name, (at, rank) in row.payload["versions"].items()
        },
        breaches=row.payload["breaches"],
    )


async def record(session: AsyncSession, *, tenant: str, update: FactUpdate) -> None:
    """Fold ``update`` into its fact of ``tenant``, creating the fact if it names a customer."""
    row = await FactRepository(session, tenant=tenant).for_update(update.kind, update.ref_id)
    merged = facts.apply(None if row is None else loaded(row), update)
    if merged is None:
        return
    if row is None:
        session.add(
            CustomerFact(
                tenant=tenant,
                kind=update.kind,
                ref_id=update.ref_id,
                customer_ref=merged.customer_ref,
                occurred_at=merged.occurred_at,
                state=merged.state,
                payload=stored(merged),
                last_event_at=merged.last_event_at,
            )
        )
    else:
        row.customer_ref = merged.customer_ref
        row.occurred_at = merged.occurred_at
        row.state = merged.state
        row.payload = stored(merged)
        row.last_event_at = merged.last_event_at
    await session.flush()


async def on_fact_event(session: AsyncSession, event: Event) -> None:
    await record(session, tenant=event.tenant, update=fact_update(event))


FEEDBACK_FACTS = ConsumerSpec(
    name="feedback-facts",
    stream=stream_name("feedback"),
    subjects=list(events.FEEDBACK_FACT_SUBJECTS),
    handler=on_fact_event,
)
ROUTING_FACTS = ConsumerSpec(
    name="routing-facts",
    stream=stream_name("routing"),
    subjects=list(events.ROUTING_FACT_SUBJECTS),
    handler=on_fact_event,
)
