"""The customer's story, as the agent desktop reads it: the timeline and the context call.

Everything comes from journey's own tables: interactions, profiles, the facts other services'
events left (:mod:`cxops.journey.projections`) and the proactive action log. Facts name the
customer by ``customer_ref``, the value of a profile's ``crm_id`` identifiers; they join to the
profile through ``journey_customer_identifiers``.

The context is a handful of indexed queries, each bounded (``LIMIT``), run one after the other
on the request's connection: a few milliseconds on PostgreSQL with a million interactions.
"""

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cxops.common.errors import Problem
from cxops.common.tenancy import TenantRepository
from cxops.journey.domain import facts
from cxops.journey.domain.facts import CASE, OPEN_STATES, RESPONSE, TASK
from cxops.journey.domain.identifiers import kind_of, normaliser
from cxops.journey.models import (
    Customer,
    CustomerFact,
    CustomerIdentifier,
    Interaction,
    ProactiveAction,
)
from cxops.journey.schemas import (
    CaseBreach,
    CaseClock,
    ContextCustomer,
    ContextIdentifier,
    CustomerContext,
    TaskOutcome,
    Timeline,
    TimelineAction,
    TimelineCase,
    TimelineInteraction,
    TimelineItem,
    TimelineResponse,
    TimelineTask,
)

#: The identifier type other services' ``customer_ref`` is a value of.
CUSTOMER_REF_TYPE = "crm_id"
LAST_INTERACTIONS = 10
REPEAT_CONTACT_WINDOW = timedelta(days=7)
RECENT_ACTIONS_WINDOW = timedelta(days=30)
#: The most proactive actions the context lists (the last 30 days' hold far fewer).
RECENT_ACTIONS_LIMIT = 50
#: The most items of each source a timeline holds; the newest are kept.
TIMELINE_LIMIT = 1000

_IDENTIFIER_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def parse_identifier(text: str) -> tuple[str, str]:
    """``type:value`` as its type and the value normalised as identity resolution stores it;
    a 422 naming ``identifier`` when it is not one (``phone:+34 600 111 222`` is
    ``("phone", "+34600111222")``)."""
    type_, sep, raw = text.partition(":")
    value = normaliser(kind_of(type_))(raw) if sep and _IDENTIFIER_TYPE.fullmatch(type_) else None
    if value is None:
        raise Problem(
            422,
            "`identifier` must be `type:value`, such as `phone:+34600111222`, with a valid value "
            "for its type.",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {
                    "field": "identifier",
                    "in": "query",
                    "message": f"not a valid identifier: {text!r}",
                    "code": "identifier",
                }
            ],
        )
    return type_, value


class StoryRepository(TenantRepository):
    """One tenant's customers and everything journey knows about them."""

    async def customer(self, customer_id: str) -> Customer | None:
        found: Customer | None = await self.session.scalar(
            self.select(Customer).where(Customer.id == customer_id)
        )
        return found

    async def customer_by_identifier(self, type_: str, value: str) -> Customer | None:
        statement = self.scoped(
            sa.select(Customer)
            .join(
                CustomerIdentifier,
                sa.and_(
                    CustomerIdentifier.tenant == Customer.tenant,
                    CustomerIdentifier.customer_id == Customer.id,
                ),
            )
            .where(CustomerIdentifier.type == type_, CustomerIdentifier.value == value)
        )
        found: Customer | None = await self.session.scalar(statement)
        return found

    def _customer_refs(self, customer_id: str) -> sa.Select[Any]:
        """The ``customer_ref`` values that name this customer in other services' events."""
        return self.select(CustomerIdentifier.value).where(
            CustomerIdentifier.customer_id == customer_id,
            CustomerIdentifier.type == CUSTOMER_REF_TYPE,
        )

    async def interactions(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> Sequence[Interaction]:
        """The customer's newest ``limit`` interactions in ``[start, end)``, newest first."""
        statement = self.select(Interaction).where(Interaction.customer_id == customer_id)
        statement = _within(statement, Interaction.occurred_at, start, end)
        rows = await self.session.scalars(
            statement.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
        )
        return rows.all()

    async def last_interactions_and_contacts(
        self, customer_id: str, *, now: datetime
    ) -> tuple[Sequence[Interaction], int]:
        """The customer's last interactions, and how many fell in the repeat-contact window up
        to ``now``: one round trip (the count is a subquery the database runs once)."""
        contacts = self.scoped(
            sa.select(sa.func.count())
            .select_from(Interaction)
            .where(
                Interaction.customer_id == customer_id,
                Interaction.occurred_at > now - REPEAT_CONTACT_WINDOW,
                Interaction.occurred_at <= now,
            )
        ).scalar_subquery()
        rows = (
            await self.session.execute(
                self.select(Interaction, contacts.label("contacts"))
                .where(Interaction.customer_id == customer_id)
                .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
                .limit(LAST_INTERACTIONS)
            )
        ).all()
        if not rows:
            return [], 0
        return [row[0] for row in rows], int(rows[0][1])

    async def facts(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> Sequence[CustomerFact]:
        """The customer's newest ``limit`` facts that began in ``[start, end)``, newest first."""
        statement = self.select(CustomerFact).where(
            CustomerFact.customer_ref.in_(self._customer_refs(customer_id))
        )
        statement = _within(statement, CustomerFact.occurred_at, start, end)
        rows = await self.session.scalars(
            statement.order_by(CustomerFact.occurred_at.desc()).limit(limit)
        )
        return rows.all()

    async def open_facts_and_last_response(self, customer_id: str) -> Sequence[CustomerFact]:
        """The customer's open cases and tasks, and their latest feedback response."""
        refs = self._customer_refs(customer_id)
        open_ids = self.select(CustomerFact.id).where(
            CustomerFact.customer_ref.in_(refs),
            sa.or_(
                *(
                    sa.and_(CustomerFact.kind == kind, CustomerFact.state.in_(sorted(states)))
                    for kind, states in OPEN_STATES.items()
                )
            ),
        )
        last_response_id = (
            self.select(CustomerFact.id)
            .where(CustomerFact.customer_ref.in_(refs), CustomerFact.kind == RESPONSE)
            .order_by(CustomerFact.occurred_at.desc())
            .limit(1)
        )
        wanted = sa.union_all(open_ids, self.scoped(sa.select(last_response_id.subquery().c.id)))
        rows = await self.session.scalars(
            self.select(CustomerFact)
            .where(CustomerFact.id.in_(wanted))
            .order_by(CustomerFact.occurred_at.desc())
        )
        return rows.all()

    async def actions(
        self,
        customer_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        taken_only: bool,
    ) -> Sequence[ProactiveAction]:
        statement = self.select(ProactiveAction).where(ProactiveAction.customer_id == customer_id)
        if taken_only:
            statement = statement.where(ProactiveAction.outcome == "taken")
        statement = _within(statement, ProactiveAction.at, start, end)
        rows = await self.session.scalars(
            statement.order_by(ProactiveAction.at.desc()).limit(limit)
        )
        return rows.all()


def _within(
    statement: sa.Select[Any], column: Any, start: datetime | None, end: datetime | None
) -> sa.Select[Any]:
    if start is not None:
        statement = statement.where(column >= start)
    if end is not None:
        statement = statement.where(column < end)
    return statement


async def _known_customer(
    stories: StoryRepository, *, customer_id: str | None, identifier: str | None
) -> Customer:
    if identifier is not None:
        type_, value = parse_identifier(identifier)
        found = await stories.customer_by_identifier(type_, value)
        if found is None:
            raise Problem(404, f"No customer with identifier {type_}:{value} in this tenant.")
        return found
    assert customer_id is not None
    found = await stories.customer(customer_id)
    if found is None:
        raise Problem(404, f"No customer {customer_id} in this tenant.")
    return found


async def timeline(
    stories: StoryRepository,
    *,
    customer_id: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    due_soon: timedelta,
) -> Timeline:
    """The customer's interactions, responses, cases, tasks and proactive actions taken in
    ``[start, end)``, oldest first; at most :data:`TIMELINE_LIMIT`, the newest."""
    customer = await _known_customer(stories, customer_id=customer_id, identifier=None)
    window = {"start": start, "end": end, "limit": TIMELINE_LIMIT + 1}
    items: list[TimelineItem] = [
        *(interaction_item(row) for row in await stories.interactions(customer.id, **window)),
        *(
            fact_item(row, now=now, due_soon=due_soon)
            for row in await stories.facts(customer.id, **window)
        ),
        *(
            action_item(row)
            for row in await stories.actions(customer.id, **window, taken_only=True)
        ),
    ]
    items.sort(key=lambda item: item.at)
    return Timeline(
        customer_id=customer.id,
        items=items[-TIMELINE_LIMIT:],
        truncated=len(items) > TIMELINE_LIMIT,
    )


async def customer_context(
    stories: StoryRepository,
    *,
    customer_id: str | None,
    identifier: str | None,
    now: datetime,
    due_soon: timedelta,
) -> CustomerContext:
    """The agent desktop's one answer about a customer, known by id or by an identifier."""
    customer = await _known_customer(stories, customer_id=customer_id, identifier=identifier)
    interactions, contacts = await stories.last_interactions_and_contacts(customer.id, now=now)
    open_and_last = await stories.open_facts_and_last_response(customer.id)
    actions = await stories.actions(
        customer.id,
        start=now - RECENT_ACTIONS_WINDOW,
        end=None,
        limit=RECENT_ACTIONS_LIMIT,
        taken_only=False,
    )
    cases = [row for row in open_and_last if row.kind == CASE]
    tasks = [row for row in open_and_last if row.kind == TASK]
    responses = [row for row in open_and_last if row.kind == RESPONSE]
    return CustomerContext(
        as_of=now,
        customer=ContextCustomer(
            id=customer.id,
            identifiers=[ContextIdentifier(**identifier) for identifier in customer.identifiers],
            first_seen=customer.first_seen,
            last_seen=customer.last_seen,
        ),
        stage=interactions[0].stage if interactions else None,
        last_interactions=[interaction_item(row) for row in interactions],
        contacts_last_7_days=contacts,
        open_cases=[case_item(row, now=now, due_soon=due_soon) for row in cases],
        last_feedback=response_item(responses[0]) if responses else None,
        open_tasks=[task_item(row) for row in tasks],
        proactive_actions=[action_item(row) for row in actions],
    )


def interaction_item(row: Interaction) -> TimelineInteraction:
    return TimelineInteraction(
        at=row.occurred_at,
        id=row.id,
        external_id=row.external_id,
        channel=row.channel,
        activity=row.activity,
        team=row.team,
        stage=row.stage,
        attributes=row.attributes,
    )


def fact_item(
    row: CustomerFact, *, now: datetime, due_soon: timedelta
) -> TimelineResponse | TimelineCase | TimelineTask:
    if row.kind == RESPONSE:
        return response_item(row)
    if row.kind == CASE:
        return case_item(row, now=now, due_soon=due_soon)
    return task_item(row)


def response_item(row: CustomerFact) -> TimelineResponse:
    payload = row.payload["fields"]
    return TimelineResponse(
        at=row.occurred_at,
        response_id=row.ref_id,
        survey_kind=payload["survey_kind"],
        score=payload["score"],
        channel=payload.get("channel"),
        comment=payload.get("comment"),
        sentiment=payload.get("sentiment"),
        agent_id=payload.get("agent_id"),
        task_id=payload.get("task_id"),
        enriched=row.state == "enriched",
    )


def case_item(row: CustomerFact, *, now: datetime, due_soon: timedelta) -> TimelineCase:
    payload = row.payload["fields"]
    breaches = row.payload["breaches"]
    return TimelineCase(
        at=row.occurred_at,
        case_id=row.ref_id,
        state=row.state,
        team=payload.get("team"),
        owner=payload.get("owner"),
        topic=payload.get("topic"),
        round=payload.get("round"),
        clocks=[
            CaseClock(**clock)
            for clock in facts.case_clocks(payload, breaches, now=now, due_soon=due_soon)
        ],
        breaches=[CaseBreach(**breach) for breach in breaches],
    )


def task_item(row: CustomerFact) -> TimelineTask:
    payload = row.payload["fields"]
    return TimelineTask(
        at=row.occurred_at,
        task_id=row.ref_id,
        state=row.state,
        queue=payload.get("queue"),
        channel=payload.get("channel"),
        agent_id=payload.get("agent_id"),
        team=payload.get("team"),
        case_id=payload.get("case_id"),
        outcome=(
            TaskOutcome(
                resolved=payload.get("resolved"),
                handle_seconds=payload.get("handle_seconds"),
                wait_seconds=payload.get("wait_seconds"),
                csat=payload.get("csat"),
            )
            if row.state == "completed"
            else None
        ),
        ended_at=payload.get("ended_at"),
        reason=payload.get("reason"),
    )


def action_item(row: ProactiveAction) -> TimelineAction:
    return TimelineAction(
        at=row.at,
        action_id=row.id,
        trigger_key=row.trigger_key,
        outcome=row.outcome,
        dedupe_key=row.dedupe_key,
        actions=row.actions,
    )
