"""The pure folding of events into facts: whatever order a fact's events arrive in, the fact
ends the same (the newest event's state and fields, older ones only filling in, every breach
once); and a case's clocks at a moment."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cxops.journey.domain.facts import Fact, FactUpdate, apply, case_clocks

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STATES = ("created", "assigned", "completed")
DEADLINES = {"acknowledge": "2026-12-01T09:00:00+00:00", "action": "2026-12-03T09:00:00+00:00"}


@st.composite
def task_updates(draw: st.DrawFn) -> list[FactUpdate]:
    """A task's events at distinct times, each with some of a few fields; the creation names
    the customer and when the task began."""
    count = draw(st.integers(1, 6))
    offsets = draw(st.lists(st.integers(0, 1000), min_size=count, max_size=count, unique=True))
    updates = []
    for index, offset in enumerate(sorted(offsets)):
        fields = draw(st.dictionaries(st.sampled_from("abcd"), st.integers(0, 9), max_size=3))
        breach = draw(st.none() | st.sampled_from(("acknowledge", "action")))
        updates.append(
            FactUpdate(
                kind="task",
                ref_id="t-1",
                customer_ref="crm-1" if index == 0 else draw(st.none() | st.just("crm-1")),
                at=T0 + timedelta(seconds=offset),
                state=STATES[min(index, 2)],
                fields=fields,
                started_at=T0 + timedelta(seconds=offsets[0]) if index == 0 else None,
                breach=(
                    None
                    if breach is None
                    else {"clock": breach, "round": 1, "deadline": DEADLINES[breach]}
                ),
            )
        )
    return updates


def fold(updates: list[FactUpdate]) -> Fact | None:
    fact = None
    for update in updates:
        fact = apply(fact, update)
    return fact


@given(updates=task_updates(), data=st.data())
def test_any_order_of_a_facts_events_ends_in_the_same_fact(
    updates: list[FactUpdate], data: st.DataObject
) -> None:
    in_order = fold(updates)
    shuffled = data.draw(st.permutations(updates))
    first = shuffled[0]
    if first.customer_ref is None:
        # An event that names no customer, about a fact not known yet, is dropped: the fact
        # then ends as if it had never come.
        assert apply(None, first) is None
        return
    assert fold(shuffled) == in_order
    assert in_order is not None
    newest = updates[-1]
    assert (in_order.state, in_order.last_event_at) == (newest.state, newest.at)
    for key in {key for update in updates for key in update.fields}:
        last_saying = next(u for u in reversed(updates) if key in u.fields)
        assert in_order.payload[key] == last_saying.fields[key]


def test_a_response_read_before_its_receipt_stays_enriched() -> None:
    received = FactUpdate("response", "r", "crm-1", T0, "received", {"score": 2}, T0)
    enriched = FactUpdate("response", "r", "crm-1", T0, "enriched", {"comment": "x"}, T0)
    fact = fold([enriched, received])
    assert fact is not None and fact.state == "enriched"
    assert fact.payload == {"score": 2, "comment": "x"}


def test_clocks_are_met_due_soon_breached_or_reported() -> None:
    feedback_at = T0
    payload = {
        "feedback_at": feedback_at.isoformat(),
        "round": 2,
        "acknowledge_due_at": (feedback_at + timedelta(hours=24)).isoformat(),
        "action_due_at": (feedback_at + timedelta(hours=72)).isoformat(),
        "close_due_at": (feedback_at + timedelta(hours=120)).isoformat(),
        "acknowledged_after_seconds": 3600.0,
    }
    reported_last_round = [{"clock": "action", "round": 1, "deadline": "2026-11-01"}]
    at_70h = case_clocks(
        payload,
        reported_last_round,
        now=feedback_at + timedelta(hours=70),
        due_soon=timedelta(hours=4),
    )
    assert [(c["clock"], c["breached"], c["due_soon"]) for c in at_70h] == [
        ("acknowledge", False, False),
        ("action", False, True),
        ("close", False, False),
    ]
    assert at_70h[0]["done_at"] == feedback_at + timedelta(hours=1)
    at_73h = case_clocks(
        payload,
        [{"clock": "close", "round": 2, "deadline": "x"}],
        now=feedback_at + timedelta(hours=73),
        due_soon=timedelta(hours=4),
    )
    assert [(c["clock"], c["breached"]) for c in at_73h] == [
        ("acknowledge", False),
        ("action", True),
        ("close", True),
    ]
