"""The root-cause Pareto: counts, shares and running shares by category x topic x team, most
frequent first, and recurrences (the same cause again within 30 days of a closed case) against
hand-worked values."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from cxops.feedback.domain.cases import (
    CaseInputError,
    CauseRecord,
    ParetoRow,
    RootCauseCategory,
    root_cause_pareto,
)

PROCESS, PRODUCT, PEOPLE = (
    RootCauseCategory.PROCESS,
    RootCauseCategory.PRODUCT,
    RootCauseCategory.PEOPLE,
)
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def test_counts_shares_and_running_shares_most_frequent_first() -> None:
    records = [
        CauseRecord(PROCESS, "billing", "billing-team", day(1)),
        CauseRecord(PROCESS, "billing", "billing-team", day(2)),
        CauseRecord(PROCESS, "billing", "billing-team", day(3)),
        CauseRecord(PRODUCT, "app", "mobile", day(4)),
        CauseRecord(PEOPLE, None, "cases", day(5)),
        # Same category and topic, another team: another cause.
        CauseRecord(PROCESS, "billing", "cases", day(6)),
    ]

    rows = root_cause_pareto(records, start=START, end=END)

    assert rows == (
        ParetoRow(PROCESS, "billing", "billing-team", 3, 0.5, 0.5, 0),
        ParetoRow(PEOPLE, None, "cases", 1, 1 / 6, 4 / 6, 0),
        ParetoRow(PROCESS, "billing", "cases", 1, 1 / 6, 5 / 6, 0),
        ParetoRow(PRODUCT, "app", "mobile", 1, 1 / 6, 1.0, 0),
    )


def test_only_cases_opened_in_the_period_are_counted() -> None:
    records = [
        CauseRecord(PROCESS, "billing", "t", START - timedelta(microseconds=1)),
        CauseRecord(PROCESS, "billing", "t", START),
        CauseRecord(PROCESS, "billing", "t", END - timedelta(microseconds=1)),
        CauseRecord(PROCESS, "billing", "t", END),
    ]
    [row] = root_cause_pareto(records, start=START, end=END)
    assert row.count == 2


def test_a_recurrence_is_the_same_cause_within_30_days_after_a_close() -> None:
    closed_before_the_period = CauseRecord(PROCESS, "billing", "t", day(-40), closed_at=day(-20))
    records = [
        closed_before_the_period,
        CauseRecord(PROCESS, "billing", "t", day(5)),  # 25 days after the close: recurs
        CauseRecord(PROCESS, "billing", "t", day(10)),  # exactly 30 days after: recurs
        CauseRecord(PROCESS, "billing", "t", day(10.5)),  # 30.5 days after: does not
        CauseRecord(PRODUCT, "billing", "t", day(6)),  # another category: does not
        CauseRecord(PROCESS, "billing", "u", day(6)),  # another team: does not
    ]

    rows = {(r.category, r.team): r for r in root_cause_pareto(records, start=START, end=END)}

    assert rows[(PROCESS, "t")].count == 3
    assert rows[(PROCESS, "t")].recurrences == 2
    assert rows[(PRODUCT, "t")].recurrences == 0
    assert rows[(PROCESS, "u")].recurrences == 0


def test_a_case_closed_in_the_period_makes_later_ones_recur_but_not_earlier_ones() -> None:
    records = [
        CauseRecord(PROCESS, "x", "t", day(1), closed_at=day(4)),
        CauseRecord(PROCESS, "x", "t", day(2)),  # opened before that close: not a recurrence
        CauseRecord(PROCESS, "x", "t", day(8)),  # after it: a recurrence
    ]
    [row] = root_cause_pareto(records, start=START, end=END)
    assert (row.count, row.recurrences) == (3, 1)


def test_the_answer_does_not_depend_on_the_order_of_the_records() -> None:
    generator = random.Random(14)
    categories = list(RootCauseCategory)
    records = [
        CauseRecord(
            generator.choice(categories),
            generator.choice(["a", "b", None]),
            generator.choice(["t", "u"]),
            day(generator.uniform(-30, 35)),
            closed_at=day(generator.uniform(-30, 35)) if generator.random() < 0.5 else None,
        )
        for _ in range(300)
    ]
    expected = root_cause_pareto(records, start=START, end=END)
    shuffled = records[:]
    generator.shuffle(shuffled)
    assert root_cause_pareto(shuffled, start=START, end=END) == expected
    assert sum(row.count for row in expected) == sum(
        1 for r in records if START <= r.opened_at < END
    )
    assert expected[-1].cumulative_share == pytest.approx(1.0)


def test_no_cases_no_rows_and_naive_bounds_are_refused() -> None:
    assert root_cause_pareto([], start=START, end=END) == ()
    with pytest.raises(CaseInputError):
        root_cause_pareto([], start=START.replace(tzinfo=None), end=END)


def test_a_case_is_not_a_recurrence_of_itself() -> None:
    records = [CauseRecord(PROCESS, "x", "t", day(1), closed_at=day(1))]
    [row] = root_cause_pareto(records, start=START, end=END)
    assert (row.count, row.recurrences) == (1, 0)
