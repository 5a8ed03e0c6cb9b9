"""The pure core of a customer's progress through a journey map
(:mod:`cxops.journey.domain.map_progress`): which stage an interaction is in, what moving on,
staying, looping back and arriving late do, and which handoff deadlines each step starts and
settles."""

from datetime import UTC, datetime, timedelta

from cxops.journey.domain.journey_map import HandoffSla, JourneyMap, Stage
from cxops.journey.domain.map_progress import Deadline, Position, advance, stage_of

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
MAP = JourneyMap(
    stages=(
        Stage("intake", ("case opened",), owner_team="frontline"),
        Stage("billing", ("handed to billing",), optional=True, owner_team="billing"),
        Stage("resolution", ("case resolved",), owner_team="frontline"),
    ),
    handoffs=(
        HandoffSla("intake", "billing", 3600),
        HandoffSla("intake", "resolution", 86400),
        HandoffSla("billing", "resolution", 600),
    ),
)


def test_an_activity_names_its_stage_before_the_interactions_own_stage() -> None:
    assert stage_of(MAP, activity="handed to billing", stage="resolution") == "billing"
    assert stage_of(MAP, activity="called back", stage="resolution") == "resolution"
    assert stage_of(MAP, activity="called back", stage="elsewhere") is None
    assert stage_of(MAP, activity="called back", stage=None) is None


def test_the_first_interaction_places_the_customer_and_starts_the_stages_deadlines() -> None:
    step = advance(MAP, None, stage="intake", at=T0)

    assert step is not None
    assert step.position == Position("intake", T0, T0)
    assert step.completed is None
    assert step.started == (
        Deadline("intake", "billing", T0, T0 + 60 * MINUTE, 3600, "frontline"),
        Deadline("intake", "resolution", T0, T0 + timedelta(days=1), 86400, "frontline"),
    )
    assert step.settles == frozenset()


def test_staying_in_a_stage_only_counts_the_interaction() -> None:
    step = advance(MAP, Position("intake", T0, T0), stage="intake", at=T0 + MINUTE)

    assert step is not None
    assert step.position == Position("intake", T0, T0 + MINUTE)
    assert (step.completed, step.started, step.settles) == (None, (), frozenset())


def test_moving_on_completes_the_stage_and_settles_what_it_reaches() -> None:
    running = frozenset({("intake", "billing"), ("intake", "resolution")})
    at = T0 + 20 * MINUTE

    to_billing = advance(MAP, Position("intake", T0, T0), stage="billing", at=at, running=running)
    past_billing = advance(
        MAP, Position("intake", T0, T0), stage="resolution", at=at, running=running
    )

    assert to_billing is not None and past_billing is not None
    assert to_billing.completed is not None
    assert (to_billing.completed.stage, to_billing.completed.next_stage) == ("intake", "billing")
    assert to_billing.completed.seconds == 1200
    assert to_billing.completed.owner_team == "frontline"
    assert to_billing.settles == {"billing"}
    assert [(d.from_stage, d.to_stage) for d in to_billing.started] == [("billing", "resolution")]
    # Skipping the optional stage reaches (and settles) both intake's handoffs.
    assert past_billing.completed is not None
    assert past_billing.completed.next_stage == "resolution"
    assert past_billing.settles == {"billing", "resolution"}
    assert past_billing.started == ()


def test_looping_back_completes_nothing_and_keeps_running_deadlines() -> None:
    running = frozenset({("billing", "resolution")})
    current = Position("billing", T0, T0 + MINUTE)

    step = advance(MAP, current, stage="intake", at=T0 + 2 * MINUTE, running=running)

    assert step is not None
    assert step.position == Position("intake", T0 + 2 * MINUTE, T0 + 2 * MINUTE)
    assert step.completed is None
    assert step.settles == frozenset()
    assert [(d.from_stage, d.to_stage) for d in step.started] == [
        ("intake", "billing"),
        ("intake", "resolution"),
    ]
    # Re-entering a stage whose handoff is still running does not start it again.
    again = advance(
        MAP, current, stage="intake", at=T0 + 2 * MINUTE, running=frozenset({("intake", "billing")})
    )
    assert again is not None
    assert [(d.from_stage, d.to_stage) for d in again.started] == [("intake", "resolution")]


def test_an_interaction_older_than_the_last_one_counted_moves_nothing() -> None:
    current = Position("billing", T0, T0 + 10 * MINUTE)

    assert advance(MAP, current, stage="resolution", at=T0 + 9 * MINUTE) is None
    assert advance(MAP, current, stage="resolution", at=T0 + 10 * MINUTE) is not None


def test_a_stage_the_map_no_longer_has_starts_the_customer_afresh() -> None:
    step = advance(MAP, Position("triage", T0, T0), stage="billing", at=T0 + MINUTE)

    assert step is not None
    assert step.position == Position("billing", T0 + MINUTE, T0 + MINUTE)
    assert step.completed is None


def test_a_deadline_past_the_end_of_the_calendar_is_never_started() -> None:
    near_the_end = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)

    step = advance(MAP, None, stage="intake", at=near_the_end)

    assert step is not None
    assert [(d.to_stage, d.due_at) for d in step.started] == [
        ("billing", near_the_end + 60 * MINUTE)  # the day-long one would end after 9999
    ]
