"""Which events each role may read on the live stream: one table, the only place it is decided.

Why these: ``admin``, ``integration`` (platform-to-platform, the same reach as webhooks) and
``ops_lead`` (operations across the tenant) read everything. A ``supervisor`` watches the floor:
routing (tasks, agents), feedback answers, cases and alerts, the scorecard, and where journeys
stall (stages, handoffs), but not identity resolution or raw interactions. An ``agent`` sees the
work it is part of: routing tasks and agent states, and cases. A ``viewer`` sees aggregates only:
the scorecard's events, never one customer's answer or case.
"""

from cxops.common.auth import Role
from cxops.gateway.event_types import Pattern, parse_patterns

READABLE_EVENTS: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: ("cx.*",),
    Role.INTEGRATION: ("cx.*",),
    Role.OPS_LEAD: ("cx.*",),
    Role.SUPERVISOR: (
        "cx.routing.*",
        "cx.feedback.response.*",
        "cx.feedback.case.*",
        "cx.feedback.alert.*",
        "cx.scorecard.*",
        "cx.journey.stage.*",
        "cx.journey.handoff.*",
    ),
    Role.AGENT: ("cx.routing.task.*", "cx.routing.agent.*", "cx.feedback.case.*"),
    Role.VIEWER: ("cx.scorecard.*",),
}


def readable_patterns(role: Role) -> list[Pattern]:
    return parse_patterns(READABLE_EVENTS[role])
