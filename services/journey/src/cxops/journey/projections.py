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
from functools import partial
from typing import Any, TypeAlias

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


_TaskEvent: TypeAlias = (
    events.TaskCreated
    | events.TaskAssigned
    | events.TaskCompleted
    | events.TaskCanceled
    | events.TaskAbandoned
)
#: A task event's field under the fact's name for it, where the two differ.
_FACT_FIELD = {"waited_seconds": "wait_seconds"}


def _task(
    payload: _TaskEvent,
    *,
    state: str,
    copied: tuple[str, ...],
    time_as: str | None = None,
    starts: bool = False,
) -> FactUpdate:
    """The update a task event makes: the task is in ``state`` from the event's
    ``<state>_at``, with the payload's ``copied`` fields and, where ``time_as`` names one, that
    time as a field. Only a task's creation ``starts`` its fact; only the creation and the
    completion name the customer."""
    at: datetime = getattr(payload, f"{state}_at")
    fields = {_FACT_FIELD.get(name, name): getattr(payload, name) for name in copied}
    if time_as is not None:
        fields[time_as] = at.isoformat()
    return FactUpdate(
        kind=TASK,
        ref_id=payload.task_id,
        customer_ref=getattr(payload, "customer_ref", None),
        at=at,
        state=state,
        fields=fields,
        started_at=at if starts else None,
    )


_UPDATES: dict[str, Callable[[Any], FactUpdate]] = {
    events.RESPONSE_RECEIVED: lambda payload: _response(payload, "received"),
    events.RESPONSE_ENRICHED: lambda payload: _response(payload, "enriched"),
    **{subject: _case for subject in events.CASE_SUBJECTS},
    events.TASK_CREATED: partial(
        _task, state="created", copied=("queue", "channel", "case_id"), starts=True
    ),
    events.TASK_ASSIGNED: partial(
        _task,
        state="assigned",
        copied=("agent_id", "team", "queue", "wait_seconds"),
        time_as="assigned_at",
    ),
    events.TASK_COMPLETED: partial(
        _task,
        state="completed",
        copied=(
            "agent_id",
            "team",
            "queue",
            "channel",
            "wait_seconds",
            "handle_seconds",
            "resolved",
            "csat",
        ),
        time_as="ended_at",
    ),
    events.TASK_CANCELED: partial(
        _task, state="canceled", copied=("reason", "waited_seconds"), time_as="ended_at"
    ),
    events.TASK_ABANDONED: partial(
        _task, state="abandoned", copied=("waited_seconds",), time_as="ended_at"
    ),
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
