"""The customer's story, as the agent desktop reads it: the timeline and the context call.

Everything comes from journey's own tables: interactions, profiles, the facts other services'
events left (:mod:`cxops.journey.projections`) and the proactive action log. Facts name the
customer by ``customer_ref``, the value of a profile's ``crm_id`` identifiers; they join to the
profile through ``journey_customer_identifiers``.

The context is four indexed queries, each bounded (``LIMIT``), built once and run one after the
other on the request's connection (a session runs one statement at a time; several connections
per call would cost the pool more than they save): under a millisecond each in PostgreSQL with a
million interactions.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cxops.common.errors import Problem
from cxops.common.tenancy import TenantRepository
from cxops.journey.customers import parse_identifier
from cxops.journey.domain import facts
from cxops.journey.domain.facts import CASE, OPEN_STATES, RESPONSE, TASK
from cxops.journey.domain.identity import Identifier
from cxops.journey.identity_store import Spelling
from cxops.journey.models import (
    Customer,
    CustomerAlias,
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


def _identifier(text: str, spelling: Spelling) -> Identifier:
    """``type:value`` as identity resolution stores it (:func:`parse_identifier`); a 422 naming
    ``identifier`` when it is not one."""
    identifier = parse_identifier(text, spelling)
    if identifier is None:
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
    return identifier


Row = sa.Row[Any]

_customers = sa.inspect(Customer).local_table
_identifiers = sa.inspect(CustomerIdentifier).local_table
_aliases = sa.inspect(CustomerAlias).local_table
_interactions = sa.inspect(Interaction).local_table
_facts = sa.inspect(CustomerFact).local_table
_actions = sa.inspect(ProactiveAction).local_table


class _OnceScoped(TenantRepository):
    """Tenant scoping for statements built once, at import: the tenant is a parameter bound at
    each call. Scoping a statement (and the ORM's setup of one) costs more CPU than PostgreSQL
    takes to run the context's queries, so the context call's statements are plain Core
    selects, scoped here once; the tenant guard still checks each as it runs."""

    def __init__(self) -> None:
        self.tenant = sa.bindparam("tenant")  # type: ignore[assignment]


_scoped = _OnceScoped().scoped
_CUSTOMER_ID = sa.bindparam("customer_id")

_CUSTOMER_BY_ID = _scoped(sa.select(_customers).where(_customers.c.id == _CUSTOMER_ID))
#: The profile a ceased profile's interactions went to (a join, or a rename).
_CUSTOMER_BY_ALIAS = _scoped(
    sa.select(_customers)
    .join(
        _aliases,
        sa.and_(
            _aliases.c.tenant == _customers.c.tenant, _aliases.c.customer_id == _customers.c.id
        ),
    )
    .where(_aliases.c.id == _CUSTOMER_ID)
)
_CUSTOMER_BY_IDENTIFIER = _scoped(
    sa.select(_customers)
    .join(
        _identifiers,
        sa.and_(
            _identifiers.c.tenant == _customers.c.tenant,
            _identifiers.c.customer_id == _customers.c.id,
        ),
    )
    .where(_identifiers.c.type == sa.bindparam("type"))
    .where(_identifiers.c.value == sa.bindparam("value"))
)
#: The ``customer_ref`` values that name the customer in other services' events.
_CUSTOMER_REFS = _scoped(
    sa.select(_identifiers.c.value).where(
        _identifiers.c.customer_id == _CUSTOMER_ID,
        _identifiers.c.type == CUSTOMER_REF_TYPE,
    )
)
_CONTACTS = _scoped(
    sa.select(sa.func.count())
    .select_from(_interactions)
    .where(
        _interactions.c.customer_id == _CUSTOMER_ID,
        _interactions.c.occurred_at > sa.bindparam("contacts_since"),
        _interactions.c.occurred_at <= sa.bindparam("now"),
    )
).scalar_subquery()
#: The last interactions, each row with the repeat-contact count (a subquery the database
#: runs once).
_LAST_INTERACTIONS = _scoped(
    sa.select(_interactions, _CONTACTS.label("contacts"))
    .where(_interactions.c.customer_id == _CUSTOMER_ID)
    .order_by(_interactions.c.occurred_at.desc(), _interactions.c.id.desc())
    .limit(LAST_INTERACTIONS)
)
_OPEN_FACT_IDS = _scoped(
    sa.select(_facts.c.id).where(
        _facts.c.customer_ref.in_(_CUSTOMER_REFS),
        sa.or_(
            *(
                sa.and_(_facts.c.kind == kind, _facts.c.state.in_(sorted(states)))
                for kind, states in OPEN_STATES.items()
            )
        ),
    )
)
_LAST_RESPONSE_ID = (
    _scoped(
        sa.select(_facts.c.id)
        .where(_facts.c.customer_ref.in_(_CUSTOMER_REFS), _facts.c.kind == RESPONSE)
        .order_by(_facts.c.occurred_at.desc())
        .limit(1)
    )
    .subquery()
    .c.id
)
#: Open cases and tasks, and the latest response.
_OPEN_FACTS_AND_LAST_RESPONSE = _scoped(
    sa.select(_facts)
    .where(_facts.c.id.in_(sa.union_all(_OPEN_FACT_IDS, sa.select(_LAST_RESPONSE_ID))))
    .order_by(_facts.c.occurred_at.desc())
)
_RECENT_ACTIONS = _scoped(
    sa.select(_actions)
    .where(_actions.c.customer_id == _CUSTOMER_ID, _actions.c.at >= sa.bindparam("since"))
    .order_by(_actions.c.at.desc())
    .limit(RECENT_ACTIONS_LIMIT)
)


class StoryRepository(TenantRepository):
    """One tenant's customers and everything journey knows about them."""

    async def _rows(self, statement: Any, **values: Any) -> Sequence[Row]:
        result = await self.session.execute(statement, {"tenant": self.tenant, **values})
        return result.all()

    async def customer(self, customer_id: str) -> Row | None:
        """The profile, also by the id of one that joined it (the row's ``id`` is current)."""
        rows = await self._rows(_CUSTOMER_BY_ID, customer_id=customer_id)
        if not rows:
            rows = await self._rows(_CUSTOMER_BY_ALIAS, customer_id=customer_id)
        return rows[0] if rows else None

    async def customer_by_identifier(self, type_: str, value: str) -> Row | None:
        rows = await self._rows(_CUSTOMER_BY_IDENTIFIER, type=type_, value=value)
        return rows[0] if rows else None

    async def last_interactions_and_contacts(
        self, customer_id: str, *, now: datetime
    ) -> tuple[Sequence[Row], int]:
        """The customer's last interactions, and how many fell in the repeat-contact window up
        to ``now``."""
        rows = await self._rows(
            _LAST_INTERACTIONS,
            customer_id=customer_id,
            contacts_since=now - REPEAT_CONTACT_WINDOW,
            now=now,
        )
        return rows, int(rows[0].contacts) if rows else 0

    async def open_facts_and_last_response(self, customer_id: str) -> Sequence[Row]:
        """The customer's open cases and tasks, and their latest feedback response."""
        return await self._rows(_OPEN_FACTS_AND_LAST_RESPONSE, customer_id=customer_id)

    async def recent_actions(self, customer_id: str, *, since: datetime) -> Sequence[Row]:
        """The customer's proactive actions since ``since``, whatever their outcome."""
        return await self._rows(_RECENT_ACTIONS, customer_id=customer_id, since=since)

    async def interactions(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> Sequence[Row]:
        """The customer's newest ``limit`` interactions in ``[start, end)``, newest first."""
        statement = self.select(_interactions).where(_interactions.c.customer_id == customer_id)
        statement = _within(statement, _interactions.c.occurred_at, start, end)
        return await self._rows(
            statement.order_by(_interactions.c.occurred_at.desc(), _interactions.c.id.desc()).limit(
                limit
            )
        )

    async def facts(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> Sequence[Row]:
        """The customer's newest ``limit`` facts that began in ``[start, end)``, newest first."""
        statement = self.select(_facts).where(_facts.c.customer_ref.in_(_CUSTOMER_REFS))
        statement = _within(statement, _facts.c.occurred_at, start, end)
        return await self._rows(
            statement.order_by(_facts.c.occurred_at.desc()).limit(limit),
            customer_id=customer_id,
        )

    async def actions_taken(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> Sequence[Row]:
        """The customer's proactive actions taken in ``[start, end)``, newest first."""
        statement = self.select(_actions).where(
            _actions.c.customer_id == customer_id, _actions.c.outcome == "taken"
        )
        statement = _within(statement, _actions.c.at, start, end)
        return await self._rows(statement.order_by(_actions.c.at.desc()).limit(limit))


def _within(
    statement: sa.Select[Any], column: Any, start: datetime | None, end: datetime | None
) -> sa.Select[Any]:
    if start is not None:
        statement = statement.where(column >= start)
    if end is not None:
        statement = statement.where(column < end)
    return statement


async def _known_customer(
    stories: StoryRepository, *, customer_id: str | None, identifier: Identifier | None
) -> Row:
    if identifier is not None:
        type_, value = identifier
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
        *(action_item(row) for row in await stories.actions_taken(customer.id, **window)),
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
    spelling: Spelling,
    now: datetime,
    due_soon: timedelta,
) -> CustomerContext:
    """The agent desktop's one answer about a customer, known by id or by an identifier
    (``type:value``, normalised under ``spelling``)."""
    customer = await _known_customer(
        stories,
        customer_id=customer_id,
        identifier=None if identifier is None else _identifier(identifier, spelling),
    )
    interactions, contacts = await stories.last_interactions_and_contacts(customer.id, now=now)
    open_and_last = await stories.open_facts_and_last_response(customer.id)
    actions = await stories.recent_actions(customer.id, since=now - RECENT_ACTIONS_WINDOW)
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


def interaction_item(row: Row) -> TimelineInteraction:
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
    row: Row, *, now: datetime, due_soon: timedelta
) -> TimelineResponse | TimelineCase | TimelineTask:
    if row.kind == RESPONSE:
        return response_item(row)
    if row.kind == CASE:
        return case_item(row, now=now, due_soon=due_soon)
    return task_item(row)


def response_item(row: Row) -> TimelineResponse:
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


def case_item(row: Row, *, now: datetime, due_soon: timedelta) -> TimelineCase:
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


def task_item(row: Row) -> TimelineTask:
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


def action_item(row: Row) -> TimelineAction:
    return TimelineAction(
        at=row.at,
        action_id=row.id,
        trigger_key=row.trigger_key,
        outcome=row.outcome,
        dedupe_key=row.dedupe_key,
        actions=row.actions,
    )
