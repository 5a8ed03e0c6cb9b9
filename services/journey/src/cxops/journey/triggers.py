"""Proactive triggers as a service: their versions, the tenant's contact limits, the evaluation
of every recorded interaction (and every delayed handoff), the effect against the holdout and
the dry run over stored history.

Evaluation runs in consumers of journey's own stream, each event once (the inbox): for every
trigger of the event's tenant whose condition the customer meets, the pure
:func:`cxops.journey.domain.triggers.decide` says what to do, one action log row records it, and
a treatment queues ``cx.journey.trigger.fired.v1`` (and ``cx.journey.task.requested.v1`` per
``create_task``) in the same transaction. Decisions read the service's clock: quiet hours and
caps are about when the customer would be contacted, which is now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.auth import CallerContext
from cxops.common.clock import Clock, system_clock
from cxops.common.db import once_per_transaction, take_tenant_lock
from cxops.common.errors import Problem
from cxops.common.events import ConsumerSpec, Event, PermanentEventError, add_event
from cxops.common.events.broker import stream_name
from cxops.common.service import ServiceState
from cxops.common.tenancy import TenantRepository
from cxops.journey import events
from cxops.journey.domain import triggers as rules
from cxops.journey.models import (
    CustomerFact,
    CustomerIdentifier,
    DecisionLock,
    Interaction,
    ProactiveAction,
    TriggerSettings,
    TriggerVersion,
)
from cxops.journey.schemas import TriggerPut, TriggerSettingsPut
from cxops.journey.settings import JourneySettings

#: The identifier type other services' ``customer_ref`` is the value of.
CRM_ID = "crm_id"
decision_locks = DecisionLock.__table__  # type: ignore[attr-defined]


class TriggerNotFound(Problem):
    def __init__(self, key: str) -> None:
        super().__init__(404, f"No trigger {key!r} in this tenant.", slug="trigger-not-found")


class Triggers:
    """The clock and defaults trigger decisions read (a :class:`cxops.common.service.Component`
    with nothing to run): endpoints and consumers reach them through the service state."""

    def __init__(self, state: ServiceState, *, clock: Clock = system_clock) -> None:
        settings = state.settings
        assert isinstance(settings, JourneySettings)
        self.settings = settings
        self.clock = clock

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def default_policy(self) -> TriggerSettingsPut:
        s = self.settings
        return TriggerSettingsPut.model_validate(
            {
                "max_contacts": s.trigger_max_contacts,
                "per_days": s.trigger_contact_days,
                "quiet_hours": {"start": s.trigger_quiet_start, "end": s.trigger_quiet_end},
                "timezone": s.trigger_timezone,
            }
        )


# --- repository ----------------------------------------------------------------------------


class TriggerRepository(TenantRepository):
    """One tenant's triggers, contact limits, action log and the history triggers read."""

    async def latest(self, key: str) -> TriggerVersion | None:
        return await self.session.scalar(
            self.select(TriggerVersion)
            .where(col(TriggerVersion.key) == key)
            .order_by(col(TriggerVersion.version).desc())
            .limit(1)
        )

    async def all_latest(self) -> list[TriggerVersion]:
        rows = await self.session.scalars(
            self.select(TriggerVersion).order_by(
                col(TriggerVersion.key), col(TriggerVersion.version).desc()
            )
        )
        latest: dict[str, TriggerVersion] = {}
        for row in rows:
            latest.setdefault(row.key, row)
        return list(latest.values())

    async def settings(self) -> TriggerSettings | None:
        return await self.session.scalar(self.select(TriggerSettings))

    async def action_log(
        self, customer_id: str, *, dedupe_key: str, since: datetime
    ) -> list[rules.LoggedAction]:
        """The customer's rows that can stop a decision: the same dedupe key ever, and the
        contacts since ``since``."""
        rows = await self.session.scalars(
            self.select(ProactiveAction).where(
                col(ProactiveAction.customer_id) == customer_id,
                sa.or_(
                    col(ProactiveAction.dedupe_key) == dedupe_key,
                    sa.and_(
                        col(ProactiveAction.outcome) == rules.Outcome.TAKEN,
                        col(ProactiveAction.at) > since,
                    ),
                ),
            )
        )
        return [_logged(row) for row in rows]

    async def contacts_by_others(
        self, trigger_key: str, *, since: datetime, until: datetime
    ) -> list[ProactiveAction]:
        """The contacts other triggers made in ``(since, until)``: what counts toward a
        customer's cap whatever this trigger does."""
        rows = await self.session.scalars(
            self.select(ProactiveAction).where(
                col(ProactiveAction.trigger_key) != trigger_key,
                col(ProactiveAction.outcome) == rules.Outcome.TAKEN,
                col(ProactiveAction.at) > since,
                col(ProactiveAction.at) < until,
            )
        )
        return list(rows)

    async def gestures_since(self, trigger_key: str, since: datetime) -> Decimal:
        rows = await self.session.scalars(
            self.select(ProactiveAction.actions).where(
                col(ProactiveAction.trigger_key) == trigger_key,
                col(ProactiveAction.outcome) == rules.Outcome.TAKEN,
                col(ProactiveAction.at) > since,
            )
        )
        return rules.gesture_spent(a for actions in rows for a in actions)

    async def decided(
        self, trigger_key: str, start: datetime, end: datetime
    ) -> list[ProactiveAction]:
        """The trigger's treatments and holdouts in ``[start, end)``, oldest first."""
        rows = await self.session.scalars(
            self.select(ProactiveAction)
            .where(
                col(ProactiveAction.trigger_key) == trigger_key,
                col(ProactiveAction.outcome).in_([rules.Outcome.TAKEN, rules.Outcome.HELD_OUT]),
                col(ProactiveAction.at) >= start,
                col(ProactiveAction.at) < end,
            )
            .order_by(col(ProactiveAction.at))
        )
        return list(rows)

    async def interactions(
        self, start: datetime, end: datetime, customers: Iterable[str] | None = None
    ) -> list[Interaction]:
        """Interactions of resolved customers in ``(start, end]``, in time order."""
        statement = self.select(Interaction).where(
            col(Interaction.customer_id).is_not(None),
            col(Interaction.occurred_at) > start,
            col(Interaction.occurred_at) <= end,
        )
        if customers is not None:
            statement = statement.where(col(Interaction.customer_id).in_(list(customers)))
        return list(await self.session.scalars(statement.order_by(col(Interaction.occurred_at))))

    async def crm_ids(self, customers: Iterable[str]) -> dict[str, list[str]]:
        """Each customer's ``crm_id`` values: what feedback's facts call the customer."""
        rows = await self.session.execute(
            self.select(CustomerIdentifier.customer_id, CustomerIdentifier.value).where(
                col(CustomerIdentifier.type) == CRM_ID,
                col(CustomerIdentifier.customer_id).in_(list(customers)),
            )
        )
        refs: dict[str, list[str]] = defaultdict(list)
        for customer_id, value in rows:
            refs[customer_id].append(value)
        return refs

    async def facts(self, refs: Iterable[str]) -> dict[str, list[rules.Fact]]:
        """Feedback's responses and cases by ``customer_ref``."""
        refs = list(refs)
        if not refs:
            return {}
        rows = await self.session.scalars(
            self.select(CustomerFact).where(col(CustomerFact.customer_ref).in_(refs))
        )
        found: dict[str, list[rules.Fact]] = defaultdict(list)
        for row in rows:
            found[row.customer_ref].append(
                rules.Fact(row.kind, row.ref_id, row.occurred_at, row.state, row.payload)
            )
        return found


def _logged(row: ProactiveAction) -> rules.LoggedAction:
    return rules.LoggedAction(row.trigger_key, row.dedupe_key, rules.Outcome(row.outcome), row.at)


# --- triggers and settings -----------------------------------------------------------------


async def put_trigger(
    *, session: AsyncSession, caller: CallerContext, key: str, payload: TriggerPut, now: datetime
) -> tuple[TriggerVersion, bool]:
    """Store ``payload`` as the trigger's next version unless it equals the latest; returns the
    current version and whether it is new (the trigger or the version)."""
    body = payload.model_dump(mode="json", exclude_none=True)
    latest = await TriggerRepository(session, tenant=caller.tenant).latest(key)
    if latest is not None and latest.body == body:
        return latest, False
    version = TriggerVersion(
        tenant=caller.tenant,
        key=key,
        version=1 if latest is None else latest.version + 1,
        body=body,
        by=caller.subject,
        created_at=now,
    )
    session.add(version)
    await session.flush()
    return version, latest is None


async def get_trigger(*, session: AsyncSession, caller: CallerContext, key: str) -> TriggerVersion:
    found = await TriggerRepository(session, tenant=caller.tenant).latest(key)
    if found is None:
        raise TriggerNotFound(key)
    return found


async def list_triggers(*, session: AsyncSession, caller: CallerContext) -> list[TriggerVersion]:
    return await TriggerRepository(session, tenant=caller.tenant).all_latest()


async def contact_policy(
    session: AsyncSession, tenant: str, defaults: TriggerSettingsPut
) -> TriggerSettingsPut:
    row = await TriggerRepository(session, tenant=tenant).settings()
    if row is None:
        return defaults
    return TriggerSettingsPut.model_validate(
        {
            "max_contacts": row.max_contacts,
            "per_days": row.per_days,
            "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end},
            "timezone": row.timezone,
        }
    )


async def put_settings(
    *, session: AsyncSession, caller: CallerContext, payload: TriggerSettingsPut, now: datetime
) -> TriggerSettingsPut:
    row = await TriggerRepository(session, tenant=caller.tenant).settings()
    values: dict[str, Any] = {
        "max_contacts": payload.max_contacts,
        "per_days": payload.per_days,
        "quiet_start": payload.quiet_hours.start,
        "quiet_end": payload.quiet_hours.end,
        "timezone": payload.timezone,
        "updated_at": now,
    }
    if row is None:
        session.add(TriggerSettings(tenant=caller.tenant, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    return payload


def as_policy(settings: TriggerSettingsPut) -> rules.ContactPolicy:
    return rules.ContactPolicy(
        max_contacts=settings.max_contacts,
        per_days=settings.per_days,
        quiet_hours=rules.QuietHours(
            time.fromisoformat(settings.quiet_hours.start),
            time.fromisoformat(settings.quiet_hours.end),
        ),
        timezone=settings.timezone,
    )


def as_rule(row: TriggerVersion) -> rules.Trigger:
    """The stored version as the domain's trigger."""
    body = TriggerPut.model_validate(row.body)
    when = body.when
    condition: rules.Condition
    if when.interaction is not None:
        condition = rules.InteractionCondition(
            activity=when.interaction.activity,
            attributes=tuple(
                (name, op, operand)
                for name, comparisons in when.interaction.attributes.items()
                for op, operand in comparisons.items()
            ),
        )
    elif when.repeat_contacts is not None:
        condition = rules.RepeatContacts(when.repeat_contacts.count, when.repeat_contacts.days)
    elif when.stage_overdue is not None:
        condition = rules.StageOverdue(when.stage_overdue.map)
    else:
        condition = rules.NegativeFeedbackWhileCaseOpen()
    return rules.Trigger(
        key=row.key,
        version=row.version,
        when=condition,
        actions=tuple(a.model_dump(mode="json") for a in body.then),
        holdout_percent=float(body.holdout_percent),
        budget=None if body.budget is None else rules.Budget(body.budget.value, body.budget.days),
        enabled=body.enabled,
    )


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A trigger the customer met, and what its treatment is keyed on."""

    trigger: rules.Trigger
    dedupe_key: str


def _read(model: type[BaseModel], event: Event) -> Any:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise PermanentEventError(f"unreadable {event.type} payload: {exc}") from exc


def interaction_matches(
    trigger: rules.Trigger,
    interaction: events.InteractionRecordedV1,
    *,
    contact_times: Sequence[datetime],
    facts: Sequence[rules.Fact],
) -> Match | None:
    """Whether the interaction (with the customer's history as given) meets the trigger."""
    when, at = trigger.when, interaction.occurred_at
    if isinstance(when, rules.InteractionCondition):
        if when.matches(interaction.activity, interaction.attributes):
            return Match(trigger, rules.dedupe_key(trigger.key, interaction.attributes, at.date()))
    elif isinstance(when, rules.RepeatContacts):
        if when.met(contact_times, at):
            return Match(trigger, f"{trigger.key}:day:{at.date().isoformat()}")
    elif isinstance(when, rules.NegativeFeedbackWhileCaseOpen):
        case = when.open_case_with_complaint(facts, at)
        if case is not None:
            return Match(trigger, f"{trigger.key}:case:{case.ref_id}")
    return None


async def on_interaction_recorded(triggers: Triggers, session: AsyncSession, event: Event) -> None:
    interaction: events.InteractionRecordedV1 = _read(events.InteractionRecordedV1, event)
    customer_id = interaction.customer_id
    if customer_id is None:
        return
    repository = TriggerRepository(session, tenant=event.tenant)
    active = [
        trigger
        for trigger in map(
            as_rule,
            await once_per_transaction(session, ("triggers", event.tenant), repository.all_latest),
        )
        if trigger.enabled and not isinstance(trigger.when, rules.StageOverdue)
    ]
    if not active:
        return
    contact_times = await _contact_times(repository, interaction, active)
    facts = await _customer_facts(repository, customer_id, active)
    for trigger in active:
        match = interaction_matches(trigger, interaction, contact_times=contact_times, facts=facts)
        if match is not None:
            await act(
                triggers,
                session,
                tenant=event.tenant,
                customer_id=customer_id,
                match=match,
                interaction=events.FiringInteraction(
                    interaction_id=interaction.interaction_id,
                    external_id=interaction.external_id,
                    activity=interaction.activity,
                    channel=interaction.channel,
                    occurred_at=interaction.occurred_at,
                    attributes=interaction.attributes,
                ),
            )


async def _contact_times(
    repository: TriggerRepository,
    interaction: events.InteractionRecordedV1,
    active: Sequence[rules.Trigger],
) -> list[datetime]:
    """The customer's contacts a repeat-contacts trigger may count: this interaction, whether
    or not the intake stored it yet, and the others stored."""
    days = max((t.when.days for t in active if isinstance(t.when, rules.RepeatContacts)), default=0)
    if not days or interaction.customer_id is None:
        return []
    at = interaction.occurred_at
    stored = await repository.interactions(
        rules.shifted(at, -timedelta(days=days)), at, [interaction.customer_id]
    )
    return [i.occurred_at for i in stored if i.id != interaction.interaction_id] + [at]


async def _customer_facts(
    repository: TriggerRepository, customer_id: str, active: Sequence[rules.Trigger]
) -> list[rules.Fact]:
    if not any(isinstance(t.when, rules.NegativeFeedbackWhileCaseOpen) for t in active):
        return []
    refs = (await repository.crm_ids([customer_id])).get(customer_id, [])
    return [fact for facts in (await repository.facts(refs)).values() for fact in facts]


async def on_handoff_delayed(triggers: Triggers, session: AsyncSession, event: Event) -> None:
    """``stage_overdue`` triggers on the handoff's map act for its customer, once per handoff
    and day."""
    delayed: events.HandoffDelayed = _read(events.HandoffDelayed, event)
    if delayed.customer_id is None:
        return
    now = triggers.clock()
    repository = TriggerRepository(session, tenant=event.tenant)
    for row in await repository.all_latest():
        trigger = as_rule(row)
        overdue = (
            isinstance(trigger.when, rules.StageOverdue) and trigger.when.map == delayed.map_key
        )
        if trigger.enabled and overdue:
            handoff = f"{delayed.map_key}:{delayed.from_stage}->{delayed.to_stage}"
            await act(
                triggers,
                session,
                tenant=event.tenant,
                customer_id=delayed.customer_id,
                match=Match(trigger, f"{trigger.key}:{handoff}:{now.date().isoformat()}"),
                interaction=events.FiringInteraction(
                    interaction_id=None,
                    external_id=None,
                    activity=None,
                    channel=None,
                    occurred_at=now,
                    attributes=delayed.model_dump(),
                ),
            )


async def act(
    triggers: Triggers,
    session: AsyncSession,
    *,
    tenant: str,
    customer_id: str,
    match: Match,
    interaction: events.FiringInteraction,
) -> rules.Decision:
    """Decide, record the decision in the customer's action log and, for a treatment, queue
    its events. The tenant's decisions take turns (its decision lock, held to the commit): the
    caps and budgets they read include every decision made before."""
    await session.run_sync(lambda sync: take_tenant_lock(sync.connection(), decision_locks, tenant))
    now = triggers.clock()
    trigger = match.trigger
    repository = TriggerRepository(session, tenant=tenant)
    policy = as_policy(await contact_policy(session, tenant, triggers.default_policy()))
    spent = Decimal(0)
    if trigger.budget is not None:
        spent = await repository.gestures_since(
            trigger.key, rules.shifted(now, -timedelta(days=trigger.budget.days))
        )
    decision = rules.decide(
        tenant=tenant,
        trigger=trigger,
        customer_id=customer_id,
        dedupe=match.dedupe_key,
        at=now,
        zone=rules.customer_zone(interaction.attributes, policy.timezone),
        policy=policy,
        log=await repository.action_log(
            customer_id,
            dedupe_key=match.dedupe_key,
            since=rules.shifted(now, -timedelta(days=policy.per_days)),
        ),
        spent_in_budget_period=spent,
    )
    row = ProactiveAction(
        tenant=tenant,
        customer_id=customer_id,
        trigger_key=trigger.key,
        trigger_version=trigger.version,
        outcome=decision.outcome,
        dedupe_key=match.dedupe_key,
        actions=[dict(a) for a in decision.actions],
        interaction_id=interaction.interaction_id,
        at=now,
    )
    session.add(row)
    await session.flush()
    if decision.outcome is rules.Outcome.TAKEN:
        refs = (await repository.crm_ids([customer_id])).get(customer_id, [])
        customer_ref = min(refs) if refs else None
        await _queue_treatment(session, tenant, row, customer_ref, interaction)
    return decision


async def _queue_treatment(
    session: AsyncSession,
    tenant: str,
    row: ProactiveAction,
    customer_ref: str | None,
    interaction: events.FiringInteraction,
) -> None:
    common = {
        "action_id": row.id,
        "trigger_key": row.trigger_key,
        "trigger_version": row.trigger_version,
        "customer_id": row.customer_id,
        "customer_ref": customer_ref,
        "dedupe_key": row.dedupe_key,
    }
    await add_event(
        session,
        events.journey_event(
            events.TRIGGER_FIRED,
            tenant=tenant,
            **common,
            actions=row.actions,
            interaction=interaction.model_dump(),
            fired_at=row.at,
        ),
    )
    for action in row.actions:
        if action["type"] == "create_task":
            await add_event(
                session,
                events.journey_event(
                    events.TASK_REQUESTED,
                    tenant=tenant,
                    **common,
                    queue=action["queue"],
                    priority=action.get("priority"),
                    skills=action.get("skills", {}),
                    requested_at=row.at,
                ),
            )


# --- effect --------------------------------------------------------------------------------


async def effect(
    *,
    session: AsyncSession,
    caller: CallerContext,
    key: str,
    start: datetime,
    end: datetime,
    follow_up_days: int,
) -> rules.Effect:
    """Each customer the trigger treated or held out in ``[start, end)`` (their first
    decision), and what followed it within ``follow_up_days``."""
    repository = TriggerRepository(session, tenant=caller.tenant)
    if await repository.latest(key) is None:
        raise TriggerNotFound(key)
    first: dict[str, ProactiveAction] = {}
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for row in await repository.decided(key, start, end):
        first.setdefault(row.customer_id, row)
        cost[row.customer_id] += rules.gesture_spent(row.actions)
    window = timedelta(days=follow_up_days)
    later = await repository.interactions(start, rules.shifted(end, window), first)
    contacts: dict[str, list[datetime]] = defaultdict(list)
    for interaction in later:
        assert interaction.customer_id is not None
        contacts[interaction.customer_id].append(interaction.occurred_at)
    refs = await repository.crm_ids(first)
    facts = await repository.facts(ref for values in refs.values() for ref in values)
    followed = []
    for customer_id, row in first.items():
        after = row.at
        until = rules.shifted(after, window)
        theirs = sorted(
            (f for ref in refs.get(customer_id, []) for f in facts.get(ref, [])),
            key=lambda f: f.occurred_at,
        )
        within = [f for f in theirs if after < f.occurred_at <= until]
        nps = [
            f.payload["score"]
            for f in within
            if f.kind == "response" and f.payload.get("kind") == "nps"
        ]
        followed.append(
            rules.Followed(
                customer_id=customer_id,
                treated=row.outcome == rules.Outcome.TAKEN,
                complained=any(f.kind == "case" or rules.is_negative_response(f) for f in within),
                contacts_after=sum(1 for t in contacts[customer_id] if after < t <= until),
                nps_after=nps[0] if nps else None,
                gesture_cost=cost[customer_id]
                if row.outcome == rules.Outcome.TAKEN
                else Decimal(0),
            )
        )
    return rules.effect(followed)


# --- dry run -------------------------------------------------------------------------------


@dataclass
class DayCounts:
    fired: int = 0
    capped: int = 0
    quiet: int = 0
    held_out: int = 0
    duplicate: int = 0


@dataclass
class DryRun:
    trigger: rules.Trigger
    customers: set[str]
    days: dict[date, DayCounts]

    def total(self, name: str) -> int:
        return sum(getattr(counts, name) for counts in self.days.values())


class NotReplayable(Problem):
    def __init__(self, key: str) -> None:
        super().__init__(
            422,
            f"Trigger {key!r} acts on delayed handoffs, which are not stored: a dry run replays "
            "stored interactions only.",
            slug="trigger-not-replayable",
        )


async def dry_run(
    *,
    session: AsyncSession,
    caller: CallerContext,
    key: str,
    start: datetime,
    end: datetime,
    defaults: TriggerSettingsPut,
) -> DryRun:
    """Replay the stored interactions of ``[start, end)`` through the trigger as if it had been
    live, each decided at the interaction's time against the contacts other triggers really
    made and what the replay itself did (the trigger's own real log is left out: the replay
    stands in for it). Nothing is stored. Cases are read in their current state."""
    repository = TriggerRepository(session, tenant=caller.tenant)
    row = await repository.latest(key)
    if row is None:
        raise TriggerNotFound(key)
    trigger = as_rule(row)
    if isinstance(trigger.when, rules.StageOverdue):
        raise NotReplayable(key)
    policy = as_policy(await contact_policy(session, caller.tenant, defaults))
    lookback = timedelta(
        days=trigger.when.days if isinstance(trigger.when, rules.RepeatContacts) else 0
    )
    history = await repository.interactions(
        rules.shifted(start, -lookback - timedelta(microseconds=1)), end
    )
    facts: dict[str, list[rules.Fact]] = {}
    if isinstance(trigger.when, rules.NegativeFeedbackWhileCaseOpen):
        customers = {i.customer_id for i in history if i.customer_id is not None}
        refs = await repository.crm_ids(customers)
        by_ref = await repository.facts(r for values in refs.values() for r in values)
        facts = {c: [f for r in refs.get(c, []) for f in by_ref.get(r, [])] for c in customers}
    times: dict[str, list[datetime]] = defaultdict(list)
    logs: dict[str, list[rules.LoggedAction]] = defaultdict(list)
    others = await repository.contacts_by_others(
        trigger.key, since=rules.shifted(start, -timedelta(days=policy.per_days)), until=end
    )
    for contact in others:
        logs[contact.customer_id].append(_logged(contact))
    gestures: list[tuple[datetime, Mapping[str, Any]]] = []
    result = DryRun(trigger, set(), defaultdict(DayCounts))
    for stored in history:
        customer_id = stored.customer_id
        assert customer_id is not None
        times[customer_id].append(stored.occurred_at)
        if stored.occurred_at < start or stored.occurred_at >= end:
            continue
        interaction = events.InteractionRecordedV1(
            interaction_id=stored.id,
            external_id=stored.external_id,
            occurred_at=stored.occurred_at,
            identifiers=stored.identifiers,
            channel=stored.channel,
            activity=stored.activity,
            team=stored.team,
            stage=stored.stage,
            attributes=stored.attributes,
            customer_id=customer_id,
            received_at=stored.received_at,
        )
        match = interaction_matches(
            trigger,
            interaction,
            contact_times=times[customer_id],
            facts=facts.get(customer_id, []),
        )
        if match is None:
            continue
        at = stored.occurred_at
        spent = Decimal(0)
        if trigger.budget is not None:
            since = rules.shifted(at, -timedelta(days=trigger.budget.days))
            spent = rules.gesture_spent(a for t, a in gestures if t > since)
        decision = rules.decide(
            tenant=caller.tenant,
            trigger=trigger,
            customer_id=customer_id,
            dedupe=match.dedupe_key,
            at=at,
            zone=rules.customer_zone(stored.attributes, policy.timezone),
            policy=policy,
            log=logs[customer_id],
            spent_in_budget_period=spent,
        )
        logs[customer_id].append(
            rules.LoggedAction(trigger.key, match.dedupe_key, decision.outcome, at)
        )
        gestures.extend((at, a) for a in decision.actions)
        counts = result.days[at.date()]
        if decision.outcome is rules.Outcome.TAKEN:
            counts.fired += 1
            result.customers.add(customer_id)
        else:
            name = decision.outcome.value
            setattr(counts, name, getattr(counts, name) + 1)
    return result


# --- consumers -----------------------------------------------------------------------------


def _bound(handler: Any) -> Any:
    def bind(state: ServiceState) -> Any:
        return partial(handler, state.component(Triggers))

    return bind


#: Every recorded interaction, against the tenant's triggers (durable
#: ``journey-trigger-interactions``).
INTERACTIONS = ConsumerSpec(
    name="trigger-interactions",
    stream=stream_name("journey"),
    subjects=[events.INTERACTION_RECORDED],
    bind=_bound(on_interaction_recorded),
)
#: Every delayed handoff, against ``stage_overdue`` triggers (durable
#: ``journey-trigger-handoffs``).
HANDOFFS = ConsumerSpec(
    name="trigger-handoffs",
    stream=stream_name("journey"),
    subjects=[events.HANDOFF_DELAYED],
    bind=_bound(on_handoff_delayed),
)
