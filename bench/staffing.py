"""Staffing speed: a week's plan (672 half-hour intervals) with Erlang C, against a baseline in
the same run that sizes each interval with the textbook formula in exact arithmetic (in floats
it overflows past about 170 agents); and Erlang C and Erlang A at 2,000 erlangs.
Goals: the week in at most 50 ms; 2,000 erlangs without overflow.

    uv run python bench/staffing.py
"""

import math
import statistics
import time
from collections.abc import Callable
from fractions import Fraction

from cxops.routing.domain import erlang_a
from cxops.routing.domain.staffing import Demand, Target, plan

TARGET = Target(answer_seconds=20, service_level=0.8, shrinkage=0.3, max_occupancy=0.95)


def week() -> list[tuple[str, float, float]]:
    """A contact-centre week: quiet nights, a morning peak and an afternoon shoulder."""
    rows = []
    for day in range(7):
        weekend = 0.55 if day >= 5 else 1.0
        for half_hour in range(48):
            hour = half_hour / 2
            shape = math.exp(-((hour - 10.5) ** 2) / 8) + 0.7 * math.exp(-((hour - 15) ** 2) / 6)
            volume = round(1400 * weekend * shape + 20)
            rows.append((f"day{day}T{half_hour // 2:02d}:{30 * (half_hour % 2):02d}", volume, 240))
    return rows


def textbook_wait(agents: int, traffic: Fraction) -> float:
    """The baseline: the textbook formula, A^N/N! · N/(N-A) over the sum, in exact arithmetic
    (in floats it overflows past about 170 agents)."""
    term = Fraction(1)
    total = Fraction(0)
    for k in range(agents):
        total += term
        term = term * traffic / (k + 1)
    top = term * agents / (agents - traffic)
    return float(top / (total + top))


def textbook_agents(demand: Demand, target: Target) -> int:
    traffic = Fraction(demand.volume) * Fraction(demand.aht_seconds) / int(demand.interval_seconds)
    agents = max(math.floor(traffic) + 1, math.ceil(traffic / Fraction(target.max_occupancy)))
    while True:
        wait = textbook_wait(agents, traffic)
        spare = float(agents - traffic)
        level = 1 - wait * math.exp(-spare * target.answer_seconds / demand.aht_seconds)
        if level >= target.service_level:
            return agents
        agents += 1


def timed(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    forecast = week()
    rows, totals = plan(forecast, interval_seconds=1800, target=TARGET)
    started = time.perf_counter()
    baseline_agents = [
        textbook_agents(Demand(volume, aht, 1800), TARGET) for _start, volume, aht in forecast
    ]
    naive = time.perf_counter() - started
    assert baseline_agents == [row.staffing.agents for row in rows], "the two methods disagree"
    ours = timed(lambda: plan(forecast, interval_seconds=1800, target=TARGET), 7)
    print(
        f"week plan, 672 intervals (peak {totals.peak_agents} agents, "
        f"{totals.staff_hours:.0f} staff hours)"
    )
    print(f"  incremental Erlang B : {ours * 1000:8.1f} ms   (goal <= 50 ms)")
    print(
        f"  textbook formula, exact: {naive * 1000:8.1f} ms   ratio {naive / ours:5.1f}x"
        "   (same head counts)"
    )

    big = Demand(volume=20_000, aht_seconds=180, interval_seconds=1800)
    c_figures = plan([("big", big.volume, big.aht_seconds)], interval_seconds=1800, target=TARGET)
    sized = c_figures[0][0].staffing
    c_time = timed(lambda: plan([("big", 20_000, 180)], interval_seconds=1800, target=TARGET), 7)
    print(
        f"Erlang C at {big.traffic_erlangs:.0f} erlangs: {sized.agents} agents, "
        f"P(wait) {sized.wait_probability:.4f}, SL {sized.service_level:.3f}, "
        f"sized in {c_time * 1000:.1f} ms (finite: {math.isfinite(sized.asa_seconds)})"
    )
    a_figures = erlang_a.evaluate(big, sized.agents, patience_seconds=120, answer_seconds=20)
    a_time = timed(
        lambda: erlang_a.evaluate(big, sized.agents, patience_seconds=120, answer_seconds=20), 3
    )
    print(
        f"Erlang A at {big.traffic_erlangs:.0f} erlangs, {sized.agents} agents, patience "
        f"120 s: abandon {a_figures.abandon_probability:.4f}, SL {a_figures.service_level:.3f},"
        f" in {a_time * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
