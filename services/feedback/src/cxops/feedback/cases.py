"""Closed-loop cases as the service runs them: opening at intake, the transitions callers ask
for, the tenant's case setting, and the SLA clocks' timer.

The decisions are the pure core's (:mod:`cxops.feedback.domain.cases`); this module loads a case
row into a domain :class:`~cxops.feedback.domain.cases.Case`, asks the core, and writes the new
row, its history line and its events in one transaction (the events through the outbox).

**Concurrency.** Every case row has a ``version``; a change is written only if the row is still at
the version it was read at. A change that loses that race reads the case again and retries (the
domain may now refuse it: 409), so two callers, or a caller and another replica's timer, never
overwrite each other and each breach is recorded and published once.

**Clocks.** :class:`CaseClocks` keeps one timer per process, armed for the earliest
``next_due_at`` of any tenant's case: loaded from the database at start (so clocks survive a
restart), brought forward when a change commits an earlier moment, and re-read from the database
at least every ``case_clock_rescan_seconds`` (cases changed by other replicas). When it fires it
runs the core's ``check_clocks`` on every case due, in a transaction per case. Time comes from an
injected clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.clock import system_clock
from cxops.common.db import CommitInfo
from cxops.common.events import Event
from cxops.common.events.group_commit import Row
from cxops.common.events.outbox import add_events, outbox_row
from cxops.common.service import ServiceState
from cxops.feedback import events
from cxops.feedback.domain import cases as domain
from cxops.feedback.domain.cases import (
    Breach,
    Case,
    CaseAction,
    CaseRules,
    CaseState,
    Clock,
    ResponseFacts,
    RootCause,
    RootCauseCategory,
    SlaPolicy,
    Transition,
)
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.feedback.repository import (
    CASE_HISTORY,
    CASES,
    CaseRepository,
    ResponseRepository,
    page_of,
)
from cxops.feedback.repository import due_cases as _due_cases
from cxops.feedback.repository import earliest_due as _earliest_due
from cxops.feedback.schemas import (
    DEFAULT_CASE_RULES,
    BreachPublic,
    CaseDetail,
    CasePublic,
    CaseRulesPublic,
    CaseRulesUpdate,
    Deadlines,
    HistoryPublic,
    ResponsePublic,
    RootCausePareto,
    RootCauseRow,
    RootCauseSpec,
    SlaSpec,
)
from cxops.feedback.settings import FeedbackSettings
from cxops.feedback.tenant_cache import TenantCache

log = logging.getLogger("cxops.feedback.cases")

#: Who the clocks act as in a case's history and events.
SYSTEM = "system"
#: A change that keeps losing the race to concurrent changes gives up after this many tries.
MAX_ATTEMPTS = 5
#: Cases one firing of the timer looks at per transaction batch.
DUE_BATCH = 200
#: The key in a transaction's notes (``session.info``) of the earliest moment it made due.
_DUE_NOTE = "cxops_feedback_case_due"


def _settings(state: ServiceState) -> FeedbackSettings:
    settings = state.settings
    if not isinstance(settings, FeedbackSettings):
        raise TypeError(f"the feedback service runs with FeedbackSettings, not {type(settings)}")
    return settings


class CaseNotFound(LookupError):
    """No case with that id in the caller's tenant (whether or not another tenant has one)."""


class CaseChangedConcurrently(Exception):
    """The case kept changing under this request (answered 409: read it and try again)."""


# ------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class CaseSettings:
    """A tenant's case setting, ready to use: the core's rules and SLA policy, and the public
    shape it is read back in."""

    rules: CaseRules
    sla: SlaPolicy
    public: CaseRulesPublic

    @classmethod
    def of(cls, public: CaseRulesPublic) -> CaseSettings:
        return cls(rules=public.to_domain(), sla=public.sla.to_domain(), public=public)


DEFAULT_SETTINGS = CaseSettings.of(DEFAULT_CASE_RULES)


def _settings_from_row(row: Mapping[str, Any]) -> CaseSettings:
    return CaseSettings.of(
        CaseRulesPublic(
            rules=row["rules"],
            topic_teams=row["topic_teams"],
            default_team=row["default_team"],
            sla=SlaSpec(
                acknowledge_within_seconds=row["acknowledge_within_seconds"],
                action_within_seconds=row["action_within_seconds"],
                close_within_seconds=row["close_within_seconds"],
            ),
            version=row["version"],
            updated_at=row["updated_at"],
            updated_by=row["updated_by"],
        )
    )


async def read_case_settings(session: AsyncSession, *, tenant: str) -> CaseSettings:
    row = await CaseRepository(session, tenant=tenant).settings()
    return DEFAULT_SETTINGS if row is None else _settings_from_row(row)


async def put_case_settings(
    *,
    session: AsyncSession,
    caller: CallerContext,
    update: CaseRulesUpdate,
    now: datetime,
) -> CaseSettings:
    """Replace the tenant's case rules and SLA policy. Cases already open keep the policy they
    opened under."""
    values = {
        "rules": [rule.model_dump(mode="json") for rule in update.rules],
        "topic_teams": dict(update.topic_teams),
        "default_team": update.default_team,
        "acknowledge_within_seconds": update.sla.acknowledge_within_seconds,
        "action_within_seconds": update.sla.action_within_seconds,
        "close_within_seconds": update.sla.close_within_seconds,
        "updated_at": now,
        "updated_by": caller.subject,
    }
    version = await CaseRepository(session, tenant=caller.tenant).save_settings(values)
    return _settings_from_row({**values, "version": version})


class CaseSettingsCache(TenantCache[CaseSettings]):
    """Each tenant's case setting, as intake reads it for every answer (see
    :mod:`cxops.feedback.tenant_cache`)."""

    def __init__(self, state: ServiceState) -> None:
        super().__init__(
            state.db,
            lambda session, tenant: read_case_settings(session, tenant=tenant),
            ttl_seconds=_settings(state).tenant_settings_cache_seconds,
        )


# ------------------------------------------------------------------------- rows and cases


def case_from_row(row: Mapping[str, Any]) -> Case:
    """The core's case from its row."""
    category = row["root_cause_category"]
    return Case(
        state=CaseState(row["state"]),
        team=row["team"],
        rule=row["rule"],
        feedback_at=row["feedback_at"],
        opened_at=row["opened_at"],
        sla=SlaPolicy(
            acknowledge_within=timedelta(seconds=row["acknowledge_within_seconds"]),
            action_within=timedelta(seconds=row["action_within_seconds"]),
            close_within=timedelta(seconds=row["close_within_seconds"]),
        ),
        topic=row["topic"],
        owner=row["owner"],
        round=row["round"],
        reopened_at=row["reopened_at"],
        acknowledged_at=row["acknowledged_at"],
        action_documented_at=row["action_documented_at"],
        closed_at=row["closed_at"],
        corrective_action=row["corrective_action"],
        root_cause=(
            RootCause(RootCauseCategory(category), tuple(row["root_cause_why_chain"]))
            if category is not None
            else None
        ),
        resolution=row["resolution"],
        customer_contacted=row["customer_contacted"],
        escalated_at=row["escalated_at"],
        breaches=tuple(
            Breach(Clock(b["clock"]), int(b["round"]), datetime.fromisoformat(b["deadline"]))
            for b in row["breaches"]
        ),
    )


def case_columns(case: Case, *, now: datetime) -> dict[str, Any]:
    """The columns a case's state sets (all but its identity, its facts and its version)."""
    due = domain.deadlines(case)
    return {
        "state": case.state.value,
        "team": case.team,
        "owner": case.owner,
        "round": case.round,
        "reopened_at": case.reopened_at,
        "acknowledged_at": case.acknowledged_at,
        "action_documented_at": case.action_documented_at,
        "closed_at": case.closed_at,
        "acknowledge_due_at": due[Clock.ACKNOWLEDGE],
        "action_due_at": due[Clock.ACTION],
        "close_due_at": due[Clock.CLOSE],
        "next_due_at": domain.next_due(case, now),
        "escalated_at": case.escalated_at,
        "breaches": [
            {"clock": b.clock.value, "round": b.round, "deadline": b.deadline.isoformat()}
            for b in case.breaches
        ],
        "breached": bool(case.breaches),
        "corrective_action": case.corrective_action,
        "root_cause_category": case.root_cause.category.value if case.root_cause else None,
        "root_cause_why_chain": list(case.root_cause.why_chain) if case.root_cause else None,
        "resolution": case.resolution,
        "customer_contacted": case.customer_contacted,
        "updated_at": now,
    }


def _history_row(entry: domain.HistoryEntry, *, case_id: uuid.UUID, tenant: str) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "tenant": tenant,
        "case_id": case_id,
        "action": entry.action.value,
        "by": entry.by,
        "at": entry.at,
        "from_state": entry.from_state.value if entry.from_state is not None else None,
        "to_state": entry.to_state.value,
        "detail": dict(entry.detail),
    }


def case_public(row: Mapping[str, Any]) -> CasePublic:
    case = case_from_row(row)
    category = row["root_cause_category"]
    return CasePublic(
        id=row["id"],
        response_id=row["response_id"],
        state=case.state,
        allowed_actions=list(domain.allowed_actions(case.state)),
        rule=case.rule,
        team=case.team,
        owner=case.owner,
        topic=case.topic,
        customer_ref=row["customer_ref"],
        tier=row["tier"],
        round=case.round,
        feedback_at=case.feedback_at,
        opened_at=case.opened_at,
        reopened_at=case.reopened_at,
        acknowledged_at=case.acknowledged_at,
        action_documented_at=case.action_documented_at,
        closed_at=case.closed_at,
        sla=SlaSpec(
            acknowledge_within_seconds=row["acknowledge_within_seconds"],
            action_within_seconds=row["action_within_seconds"],
            close_within_seconds=row["close_within_seconds"],
        ),
        deadlines=Deadlines(
            acknowledge=row["acknowledge_due_at"],
            action=row["action_due_at"],
            close=row["close_due_at"],
        ),
        next_due_at=row["next_due_at"],
        escalated_at=case.escalated_at,
        breached=row["breached"],
        breaches=[
            BreachPublic(clock=b.clock, round=b.round, deadline=b.deadline) for b in case.breaches
        ],
        corrective_action=case.corrective_action,
        root_cause=(
            RootCauseSpec(category=category, why_chain=row["root_cause_why_chain"])
            if category is not None
            else None
        ),
        resolution=case.resolution,
        customer_contacted=case.customer_contacted,
        version=row["version"],
        updated_at=row["updated_at"],
    )


def _event(
    subject: str, case: Case, row: Mapping[str, Any], *, by: str, at: datetime, **extra: Any
) -> Event:
    return events.case_event(
        subject,
        case,
        case_id=row["id"],
        response_id=row["response_id"],
        customer_ref=row["customer_ref"],
        tier=row["tier"],
        tenant=row["tenant"],
        by=by,
        at=at,
        **extra,
    )


def _clock_events(check: domain.ClockCheck, row: Mapping[str, Any], *, at: datetime) -> list[Event]:
    """``case.breached`` for each breach fallen due, ``case.escalated`` if the case escalates."""
    found = [
        _event(
            events.CASE_BREACHED,
            check.case,
            row,
            by=SYSTEM,
            at=at,
            clock=breach.clock,
            deadline=breach.deadline,
            breach_round=breach.round,
        )
        for breach in check.breaches
    ]
    if check.escalate:
        found.append(_event(events.CASE_ESCALATED, check.case, row, by=SYSTEM, at=at))
    return found


# ------------------------------------------------------------------------- opening at intake


def facts_of(response: ResponsePublic) -> ResponseFacts:
    """What the case rules look at in a response as enriched at intake. Its topics come
    negative ones first, then by confidence: the case's topic (and team) is what the customer
    complained about, not merely mentioned."""
    enrichment = response.enrichment
    sentiment = enrichment.sentiment
    topics = sorted(
        enrichment.topics,
        key=lambda tag: (
            tag.sentiment is None or tag.sentiment.label is not SentimentLabel.NEGATIVE,
            -tag.confidence,
        ),
    )
    return ResponseFacts(
        kind=response.kind,
        score=response.score,
        sentiment=sentiment.label if sentiment is not None else None,
        sentiment_confidence=sentiment.confidence if sentiment is not None else None,
        topics=[tag.topic for tag in topics],
        tier=response.customer_tier,
    )


@dataclass(frozen=True, slots=True)
class CaseOpening:
    """What opening a case adds to the intake's transaction, and when its clocks fall due."""

    rows: list[Row]
    events: list[Event]
    next_due_at: datetime | None


def case_rows_for(
    response: ResponsePublic,
    *,
    tenant: str,
    facts: ResponseFacts,
    settings: CaseSettings,
    now: datetime,
) -> CaseOpening | None:
    """The case ``response`` opens under the tenant's ``settings`` (``None`` if the rules open
    none): its row, its first history line and ``case.opened``, to be written with the response.
    """
    rules = settings.rules
    owners = {tag.topic: tag.owner for tag in response.enrichment.topics if tag.owner}
    if owners:  # the taxonomy's owning teams, unless the case rules map the topic themselves
        rules = replace(rules, topic_teams={**owners, **rules.topic_teams})
    decision = domain.evaluate(facts, rules)
    if not decision.opens:
        return None
    opened = domain.open_case(
        decision, feedback_at=response.occurred_at, at=now, by=SYSTEM, sla=settings.sla
    )
    check = domain.check_clocks(opened.case, now)  # feedback older than a clock: due at once
    case = check.case
    row: dict[str, Any] = {
        **case_columns(case, now=now),
        "id": uuid7(),
        "tenant": tenant,
        "response_id": response.id,
        "rule": case.rule,
        "topic": case.topic,
        "customer_ref": response.customer_ref,
        "tier": response.customer_tier,
        "acknowledge_within_seconds": case.sla.acknowledge_within.total_seconds(),
        "action_within_seconds": case.sla.action_within.total_seconds(),
        "close_within_seconds": case.sla.close_within.total_seconds(),
        "feedback_at": case.feedback_at,
        "opened_at": case.opened_at,
        "version": 1,
    }
    history = _history_row(opened.entry, case_id=row["id"], tenant=tenant)
    return CaseOpening(
        rows=[(CASES, row), (CASE_HISTORY, history)],
        events=[
            _event(events.CASE_OPENED, case, row, by=SYSTEM, at=now),
            *_clock_events(check, row, at=now),
        ],
        next_due_at=row["next_due_at"],
    )


# ------------------------------------------------------------------------- reading


async def get_case(
    *, session: AsyncSession, caller: CallerContext, case_id: uuid.UUID
) -> CaseDetail:
    repository = CaseRepository(session, tenant=caller.tenant)
    row = await repository.get(case_id)
    if row is None:
        raise CaseNotFound(case_id)
    response = await ResponseRepository(session, tenant=caller.tenant).get(row["response_id"])
    history = await repository.history(case_id)
    return CaseDetail(
        case=case_public(row),
        response=ResponsePublic.model_validate(response),
        history=[HistoryPublic.model_validate(line) for line in history],
    )


async def list_cases(
    *,
    session: AsyncSession,
    caller: CallerContext,
    state: CaseState | None,
    team: str | None,
    breached: bool | None,
    topic: str | None,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[CasePublic], uuid.UUID | None]:
    """A page of the tenant's cases, newest first, and the cursor of the next page."""
    rows = await CaseRepository(session, tenant=caller.tenant).list_newest_first(
        state=state.value if state is not None else None,
        team=team,
        breached=breached,
        topic=topic,
        before=cursor,
        limit=limit + 1,
    )
    page, next_cursor = page_of(rows, limit, id_of=itemgetter("id"))
    return [case_public(row) for row in page], next_cursor


async def root_causes(
    *, session: AsyncSession, caller: CallerContext, start: datetime, end: datetime
) -> RootCausePareto:
    """The Pareto of root causes of the cases opened in ``[start, end)``, with recurrences."""
    rows = await CaseRepository(session, tenant=caller.tenant).with_root_causes(
        opened_from=start, opened_to=end, closed_from=start - domain.RECURRENCE_WINDOW
    )
    records = [
        domain.CauseRecord(
            category=RootCauseCategory(row["root_cause_category"]),
            topic=row["topic"],
            team=row["team"],
            opened_at=row["opened_at"],
            closed_at=row["closed_at"],
        )
        for row in rows
    ]
    pareto = domain.root_cause_pareto(records, start=start, end=end)
    return RootCausePareto(
        start=start,
        end=end,
        total=sum(line.count for line in pareto),
        items=[
            RootCauseRow(
                category=line.category,
                topic=line.topic,
                team=line.team,
                count=line.count,
                share=line.share,
                cumulative_share=line.cumulative_share,
                recurrences=line.recurrences,
            )
            for line in pareto
        ],
    )


# ------------------------------------------------------------------------- changing


async def change_case(
    *,
    session: AsyncSession,
    caller: CallerContext,
    case_id: uuid.UUID,
    now: datetime,
    change: Callable[[Case], Transition],
) -> CasePublic:
    """Apply ``change`` (a core transition, given the case as stored) and write the new case,
    its history line, its event and anything its clocks make due, in the request's transaction.

    The write names the version read; if another change came first, the case is read again and
    ``change`` applied to that (which may now refuse it). ``TransitionRefused`` and
    ``CaseInputError`` come from the core as they are.
    """
    repository = CaseRepository(session, tenant=caller.tenant)
    for _ in range(MAX_ATTEMPTS):
        row = await repository.get(case_id)
        if row is None:
            raise CaseNotFound(case_id)
        moved = change(case_from_row(row))
        check = domain.check_clocks(moved.case, now)
        values = case_columns(check.case, now=now)
        if await repository.update_if_version(case_id, version=row["version"], values=values):
            await repository.add_history(
                [_history_row(moved.entry, case_id=case_id, tenant=caller.tenant)]
            )
            subject = events.ACTION_SUBJECTS[moved.entry.action]
            extra: dict[str, Any] = {}
            if moved.entry.action is CaseAction.CLOSE:
                extra["customer_contacted"] = bool(moved.case.customer_contacted)
            changed = [
                _event(subject, check.case, row, by=caller.subject, at=now, **extra),
                *_clock_events(check, row, at=now),
            ]
            await add_events(session, [outbox_row(event) for event in changed])
            _note_due(session.info, values["next_due_at"])
            return case_public({**row, **values, "version": row["version"] + 1})
    raise CaseChangedConcurrently(case_id)


def _note_due(info: CommitInfo, due: datetime | None) -> None:
    """Leave ``due`` in the transaction's notes: the clocks are armed for it once it commits."""
    if due is not None:
        earlier = info.get(_DUE_NOTE)
        info[_DUE_NOTE] = due if earlier is None else min(earlier, due)


# ------------------------------------------------------------------------- clocks


async def fire_due_clocks(state: ServiceState, *, now: datetime) -> int:
    """Record and publish what has fallen due by ``now`` in every tenant's cases; how many
    cases changed. Each case is checked and written in a transaction of its own, on its
    version: a case another replica (or a caller) changed meanwhile is left to whoever won,
    and comes back here if it is still due."""
    changed = 0
    while True:
        async with state.db.sessionmaker() as session:
            due = await _due_cases(session, now=now, limit=DUE_BATCH)
        progressed = False
        for row in due:
            check = domain.check_clocks(case_from_row(row), now)
            values = case_columns(check.case, now=now)
            async with state.db.transaction() as session:
                repository = CaseRepository(session, tenant=row["tenant"])
                if not await repository.update_if_version(
                    row["id"], version=row["version"], values=values
                ):
                    continue
                await add_events(
                    session, [outbox_row(e) for e in _clock_events(check, row, at=now)]
                )
            progressed = True
            if check.escalate or check.breaches:
                changed += 1
        if len(due) < DUE_BATCH or not progressed:
            return changed


class CaseClocks:
    """The one timer of this process for every tenant's case clocks (see the module's
    documentation). ``now`` is the clock: the system's in production, one the tests move (then
    :meth:`wake` makes the timer look again)."""

    def __init__(self, state: ServiceState, *, now: Callable[[], datetime] = system_clock) -> None:
        self.state = state
        self.now = now
        self.rescan_seconds = _settings(state).case_clock_rescan_seconds
        self._wake = asyncio.Event()
        self._armed_for: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        #: The time up to which the timer has last looked at every case (tests wait on it).
        self.checked_until: datetime | None = None

    async def start(self) -> None:
        self.state.db.on_commit(self._on_commit)
        self._task = asyncio.create_task(self._run(), name="cxops-feedback-case-clocks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def arm(self, due: datetime | None) -> None:
        """Bring the timer forward to ``due`` if it is earlier than what it waits for."""
        if due is not None and (self._armed_for is None or due < self._armed_for):
            self._armed_for = due
            self._wake.set()

    def wake(self) -> None:
        """Look at the due cases now (after a test moved the clock)."""
        self._wake.set()

    def _on_commit(self, info: CommitInfo) -> None:
        if self._task is not None:
            self.arm(info.get(_DUE_NOTE))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self.now()
            try:
                fired = await fire_due_clocks(self.state, now=now)
                if fired:
                    log.info("case clocks: %d cases fell due", fired)
                async with self.state.db.sessionmaker() as session:
                    earliest = await _earliest_due(session)
            except Exception:
                log.exception("case clocks failed; trying again")
                earliest = None
            self.checked_until = now
            # What was armed for before this round is done; a commit during it may have armed
            # an earlier moment (and set the wake-up, so the next round starts at once).
            pending = (
                self._armed_for if self._armed_for is not None and self._armed_for > now else None
            )
            moments = [m for m in (earliest, pending) if m is not None]
            self._armed_for = min(moments) if moments else None
            delay = self.rescan_seconds
            if self._armed_for is not None:
                delay = min(delay, max(0.0, (self._armed_for - self.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
