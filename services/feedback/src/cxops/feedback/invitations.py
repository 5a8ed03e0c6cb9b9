"""Survey invitations: surveys, the exit points that invite (or record why not), the timer that
sends due invitations, and the link from a response's token back to its invitation.

The rules are :mod:`cxops.feedback.domain.invitations`; here they meet the database. Deciding
one exit point is one transaction: the survey and the source event id settle idempotency (a
unique row per survey and source), the customer's recontact guard row and the survey's quota row
for the day are locked in that order (always the same order, so two decisions cannot deadlock on
them), and the outcome is stored with its reason, its sample bucket and, if invited, its token.

Time comes from a :data:`Clock` (:func:`system_clock` unless the app is given another), so tests
move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.clock import Clock, system_clock
from cxops.common.db import CommitInfo, Database
from cxops.common.errors import Problem
from cxops.common.events import Event, PermanentEventError, add_event
from cxops.common.service import ServiceState, cancel_and_wait
from cxops.feedback import events, repository
from cxops.feedback.domain import invitations as rules
from cxops.feedback.models import Invitation, Survey
from cxops.feedback.repository import InvitationRepository, SurveyRepository, page_of
from cxops.feedback.schemas import InvitationCreate, ResponsePublic, SurveyPut
from cxops.feedback.settings import FeedbackSettings

log = logging.getLogger("cxops.feedback.invitations")

#: Set in a transaction's info when it scheduled an invitation, so its commit wakes the timer.
_SCHEDULED = "cxops_feedback_invitation_scheduled"
MANUAL = "manual"


class SurveyNotFound(LookupError):
    """No survey with that key in the caller's tenant."""


class InvitationNotFound(LookupError):
    """No invitation with that id in the caller's tenant."""


# --------------------------------------------------------------------------- surveys


async def put_survey(
    *, session: AsyncSession, caller: CallerContext, key: str, payload: SurveyPut, now: datetime
) -> tuple[Survey, bool]:
    """Create or replace the survey; returns it and whether it is new. Each change is a new
    ``version``; a PUT that changes nothing keeps the version and ``updated_at``."""
    values = payload.model_dump(mode="json")
    survey = await SurveyRepository(session, tenant=caller.tenant).get(key)
    if survey is None:
        survey = Survey(
            tenant=caller.tenant, key=key, version=1, created_at=now, updated_at=now, **values
        )
        session.add(survey)
        await session.flush()
        return survey, True
    if any(getattr(survey, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(survey, name, value)
        survey.version += 1
        survey.updated_at = now
        await session.flush()
    return survey, False


async def get_survey(*, session: AsyncSession, caller: CallerContext, key: str) -> Survey:
    survey = await SurveyRepository(session, tenant=caller.tenant).get(key)
    if survey is None:
        raise SurveyNotFound(key)
    return survey


async def list_surveys(*, session: AsyncSession, caller: CallerContext) -> list[Survey]:
    return await SurveyRepository(session, tenant=caller.tenant).list_by_key()


def exit_points(survey: Survey) -> list[rules.ExitPoint]:
    """The survey's stored exit points as the domain's values."""
    return [
        rules.ExitPoint(
            event=point["event"],
            activity=point.get("activity"),
            conditions=tuple(
                rules.Condition(c["field"], rules.Op(c["op"]), c["value"])
                for c in point.get("conditions", [])
            ),
        )
        for point in survey.exit_points
    ]


# ----------------------------------------------------------------------- invitations


@dataclass(frozen=True, slots=True)
class Trigger:
    """One exit point, whatever it came from: an event or a manual request."""

    source: str
    source_id: str
    customer_ref: str | None
    contact_channel: str | None
    contact_address: str | None
    task_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    forced: bool = False


async def invite(
    *,
    session: AsyncSession,
    tenant: str,
    survey: Survey,
    trigger: Trigger,
    now: datetime,
    default_recontact_days: int,
) -> tuple[Invitation, bool]:
    """Decide one exit point for one survey and store the outcome; returns it and whether it is
    new (an exit point already decided for this survey returns the first outcome)."""
    invitations = InvitationRepository(session, tenant=tenant)
    earlier = await invitations.get_by_source(survey.key, trigger.source_id)
    if earlier is not None:
        return earlier, False
    bucket = rules.sample_bucket(tenant, survey.key, trigger.source_id)
    reachable = (
        trigger.customer_ref is not None
        and trigger.contact_channel is not None
        and (survey.channels is None or trigger.contact_channel in survey.channels)
    )
    status = rules.precheck(
        has_contact=reachable,
        bucket=bucket,
        percentage=survey.sampling_percentage,
        forced=trigger.forced,
    )
    day = rules.quota_day(now)
    if status is None:
        assert trigger.customer_ref is not None  # reachable
        last_invited_at = await invitations.lock_recontact_guard(trigger.customer_ref)
        quota = survey.quota_per_day
        used = await invitations.lock_quota(survey.key, day) if quota is not None else 0
        status = rules.admit(
            last_invited_at=last_invited_at,
            recontact_days=(
                default_recontact_days if survey.recontact_days is None else survey.recontact_days
            ),
            now=now,
            used_today=used,
            quota_per_day=quota,
        )
    invitation = Invitation(
        id=uuid7(),
        tenant=tenant,
        survey_key=survey.key,
        kind=survey.kind,
        status=status.value,
        customer_ref=trigger.customer_ref,
        contact_channel=trigger.contact_channel,
        contact_address=trigger.contact_address,
        task_id=trigger.task_id,
        agent_id=trigger.agent_id,
        source=trigger.source,
        source_id=trigger.source_id,
        sample_bucket=bucket,
        forced=trigger.forced,
        created_at=now,
    )
    if status is rules.Status.SCHEDULED:
        assert trigger.customer_ref is not None
        invitation.token = secrets.token_urlsafe(32)
        invitation.due_at = now + timedelta(seconds=survey.delay_seconds)
        invitation.expires_at = invitation.due_at + timedelta(days=survey.valid_days)
        await invitations.set_last_invited(trigger.customer_ref, now)
        if survey.quota_per_day is not None:
            await invitations.use_quota(survey.key, day)
        session.info[_SCHEDULED] = True
    session.add(invitation)
    await session.flush()
    log.debug("survey %s, source %s: %s", survey.key, trigger.source_id, status.value)
    return invitation, True


async def create_invitation(
    *,
    session: AsyncSession,
    caller: CallerContext,
    payload: InvitationCreate,
    now: datetime,
    default_recontact_days: int,
) -> tuple[Invitation, bool]:
    """A manual invitation, under the same rules (``force`` skips sampling only). With an
    ``external_id``, a retry returns the first outcome; a concurrent retry that loses the race
    on the unique row reads the winner's."""
    survey = await get_survey(session=session, caller=caller, key=payload.survey_key)
    contact = payload.contact
    trigger = Trigger(
        source=MANUAL,
        source_id=payload.external_id or str(uuid7()),
        customer_ref=payload.customer_ref,
        contact_channel=contact.channel if contact is not None else None,
        contact_address=contact.address if contact is not None else None,
        task_id=payload.task_id,
        agent_id=payload.agent_id,
        forced=payload.force,
    )
    try:
        async with session.begin_nested():
            return await invite(
                session=session,
                tenant=caller.tenant,
                survey=survey,
                trigger=trigger,
                now=now,
                default_recontact_days=default_recontact_days,
            )
    except IntegrityError:
        winner = await InvitationRepository(session, tenant=caller.tenant).get_by_source(
            survey.key, trigger.source_id
        )
        if winner is None:
            raise
        return winner, False


async def get_invitation(
    *, session: AsyncSession, caller: CallerContext, invitation_id: uuid.UUID
) -> Invitation:
    invitation = await InvitationRepository(session, tenant=caller.tenant).get(invitation_id)
    if invitation is None:
        raise InvitationNotFound(invitation_id)
    return invitation


async def list_invitations(
    *,
    session: AsyncSession,
    caller: CallerContext,
    customer_ref: str | None,
    status: rules.Status | None,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[Invitation], uuid.UUID | None]:
    """A page of the tenant's invitations, newest first, and the cursor of the next page."""
    rows = await InvitationRepository(session, tenant=caller.tenant).list_newest_first(
        customer_ref=customer_ref,
        status=status.value if status is not None else None,
        before=cursor,
        limit=limit + 1,
    )
    return page_of(rows, limit)


# ----------------------------------------------------------------------- exit events


def _read(model: type[BaseModel], event: Event) -> Any:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise PermanentEventError(f"unreadable {event.type} payload: {exc}") from exc


def trigger_of(event: Event) -> Trigger:
    """Who to invite and how to reach them, from an exit event.

    A completed task names the customer by ``customer_ref`` and is reached on the task's channel
    (the platform knows the address). A journey interaction names the customer by ``crm_id``,
    else ``email:<address>`` or ``phone:<number>``, and is reached by email, else SMS.
    """
    if event.subject == events.TASK_COMPLETED:
        task: events.TaskCompleted = _read(events.TaskCompleted, event)
        return Trigger(
            source=event.subject,
            source_id=event.id,
            customer_ref=task.customer_ref,
            contact_channel=task.channel if task.customer_ref is not None else None,
            contact_address=None,
            task_id=task.task_id,
            agent_id=task.agent_id,
        )
    interaction: events.InteractionRecorded = _read(events.InteractionRecorded, event)
    crm_id, email, phone = (interaction.identifiers.get(k) for k in ("crm_id", "email", "phone"))
    customer_ref = crm_id or (f"email:{email}" if email else f"phone:{phone}" if phone else None)
    channel, address = ("email", email) if email else ("sms", phone)
    return Trigger(
        source=event.subject,
        source_id=event.id,
        customer_ref=customer_ref,
        contact_channel=channel if address else None,
        contact_address=address,
        task_id=None,
        agent_id=None,
    )


async def on_exit_event(
    *, session: AsyncSession, event: Event, now: datetime, default_recontact_days: int
) -> list[Invitation]:
    """Every survey of the event's tenant that one of its exit points matches decides the
    event (in key order); the consumer's inbox makes a redelivery change nothing."""
    surveys = await SurveyRepository(session, tenant=event.tenant).list_by_key()
    matching = [s for s in surveys if rules.triggered(exit_points(s), event.subject, event.data)]
    if not matching:
        return []
    trigger = trigger_of(event)
    decided = []
    for survey in matching:
        invitation, _new = await invite(
            session=session,
            tenant=event.tenant,
            survey=survey,
            trigger=trigger,
            now=now,
            default_recontact_days=default_recontact_days,
        )
        decided.append(invitation)
    return decided


# ----------------------------------------------------------------------------- timer


async def send_due(db: Database, *, now: datetime, limit: int = 200) -> int:
    """Send every invitation due by ``now``: ``scheduled`` → ``sent`` and its
    ``survey.invited`` event, in one transaction per batch. The update is conditional, so when
    several replicas' timers reach one invitation it is sent exactly once. Returns how many this
    call sent."""
    sent = 0
    while True:
        async with db.transaction() as session:
            due = await repository.due_invitations(session, now=now, limit=limit)
            for invitation in due:
                tenant = invitation.tenant
                repo = InvitationRepository(session, tenant=tenant)
                if await repo.mark_sent(invitation.id, now):
                    event = events.survey_invited(_invited(invitation), tenant=tenant)
                    await add_event(session, event)
                    sent += 1
        if len(due) < limit:
            return sent


def _invited(invitation: Invitation) -> events.SurveyInvitedV1:
    assert invitation.customer_ref is not None and invitation.contact_channel is not None
    assert invitation.token is not None and invitation.due_at is not None
    assert invitation.expires_at is not None
    return events.SurveyInvitedV1(
        invitation_id=invitation.id,
        survey_key=invitation.survey_key,
        kind=invitation.kind,  # type: ignore[arg-type]  # validated by the model
        customer_ref=invitation.customer_ref,
        contact_channel=invitation.contact_channel,
        contact_address=invitation.contact_address,
        token=invitation.token,
        task_id=invitation.task_id,
        agent_id=invitation.agent_id,
        due_at=invitation.due_at,
        expires_at=invitation.expires_at,
    )


class InvitationTimer:
    """Sends invitations as they fall due (a :class:`cxops.common.service.Component`).

    It sleeps until the earliest scheduled invitation in the database (so restarts lose
    nothing: the next due time is read again at start), woken early when this process commits a
    new one, and at least every ``invitation_poll_seconds`` to see those other replicas
    scheduled. ``clock`` is its time, and the time exit points are decided at.
    """

    def __init__(self, state: ServiceState, *, clock: Clock = system_clock) -> None:
        settings = state.settings
        assert isinstance(settings, FeedbackSettings)
        self.settings = settings
        self.db = state.db
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.db.on_commit(self._after_commit)

    def _after_commit(self, info: CommitInfo) -> None:
        if info.pop(_SCHEDULED, False):
            self.wake()

    def wake(self) -> None:
        """Look for due invitations now (after the clock moved, or one was scheduled)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cxops-feedback-invitation-timer")

    async def stop(self) -> None:
        """Let the timer finish the transaction it is in, if any, rather than cancel it there:
        on SQLite a transaction cut off mid-way would keep the write lock from the rest of the
        shutdown (the outbox relay's last writes wait for it)."""
        if self._task is None:
            return
        self._stopping = True
        self.wake()
        finished, _ = await asyncio.wait({self._task}, timeout=10)
        if not finished:
            await cancel_and_wait([self._task], deadline_seconds=5)

    async def _run(self) -> None:
        poll = self.settings.invitation_poll_seconds
        while not self._stopping:
            self._wake.clear()
            try:
                await send_due(self.db, now=self.clock())
                async with self.db.sessionmaker() as session:
                    due = await repository.next_due_at(session)
            except Exception:  # the database is away: try again shortly
                log.exception("invitation timer failed; retrying")
                due = None
                poll = min(poll, 1.0)
            else:
                poll = self.settings.invitation_poll_seconds
            delay = poll if due is None else min(poll, (due - self.clock()).total_seconds())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()


# ------------------------------------------------------------------- responses' tokens


class InvalidInvitationToken(Problem):
    """The token names no invitation of the tenant that is still open: a 422 on the field."""

    def __init__(self) -> None:
        message = "names no open invitation of this tenant (unknown, expired or not sent)"
        super().__init__(
            422,
            "The request is not valid: invitation_token",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {"field": "invitation_token", "in": "body", "message": message, "code": "invalid"}
            ],
        )


async def link_response(
    *, db: Database, tenant: str, token: str, response: ResponsePublic
) -> tuple[ResponsePublic, Sequence[sa.Executable]]:
    """The response linked to the invitation whose token it quotes, taking the invitation's
    task and agent where it gives none, and the statement that marks the invitation responded
    in the response's own commit. Raises :class:`InvalidInvitationToken` for a token that is
    not one of the tenant's invitations, or has expired at ``response.received_at``."""
    async with db.sessionmaker() as session:
        invitations = InvitationRepository(session, tenant=tenant)
        invitation = await invitations.get_by_token(token)
    if (
        invitation is None
        or invitation.status not in rules.INVITED
        or invitation.expires_at is None
        or invitation.expires_at <= response.received_at
    ):
        raise InvalidInvitationToken()
    linked = response.model_copy(
        update={
            "invitation_id": invitation.id,
            "task_id": response.task_id or invitation.task_id,
            "agent_id": response.agent_id or invitation.agent_id,
        }
    )
    return linked, [invitations.mark_responded(invitation.id, response.received_at)]
