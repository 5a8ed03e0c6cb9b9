"""The exit points feedback consumes: each matching survey decides an invitation.

``cx.routing.task.completed.v1`` (durable ``feedback-routing-tasks``) and
``cx.journey.interaction.recorded.v1`` (durable ``feedback-journey-interactions``): every
survey of the event's tenant with an exit point the event meets stores an invitation, or the
reason there is none (:func:`cxops.feedback.invitations.on_exit_event`). Both keep an inbox, and
an invitation is unique per survey and source event, so a redelivered event stores nothing
twice. An unreadable payload is a :class:`PermanentEventError`: it goes to the dead letters.
"""

from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.events import ConsumerSpec, Event, EventHandler
from cxops.common.events.broker import stream_name
from cxops.common.service import ServiceState
from cxops.feedback import invitations
from cxops.feedback.events import INTERACTION_RECORDED, TASK_COMPLETED


async def on_exit_event(
    timer: invitations.InvitationTimer, session: AsyncSession, event: Event
) -> None:
    await invitations.on_exit_event(
        session=session,
        event=event,
        now=timer.clock(),
        default_recontact_days=timer.settings.recontact_days,
    )


def _bound(state: ServiceState) -> EventHandler:
    handler: Any = partial(on_exit_event, state.component(invitations.InvitationTimer))
    return handler  # type: ignore[no-any-return]


ROUTING_TASKS = ConsumerSpec(
    name="routing-tasks", stream=stream_name("routing"), subjects=[TASK_COMPLETED], bind=_bound
)
JOURNEY_INTERACTIONS = ConsumerSpec(
    name="journey-interactions",
    stream=stream_name("journey"),
    subjects=[INTERACTION_RECORDED],
    bind=_bound,
)
