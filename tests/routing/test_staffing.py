"""Erlang C staffing against published figures, analytic cases and its own invariants."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.routing.domain import erlang_a
from cxops.routing.domain.staffing import (
    Demand,
    Target,
    erlang_b,
    erlang_c,
    evaluate,
    required,
    staff_for,
)

#: The worked example reproduced throughout call-centre planning guides: 100 calls in 30 minutes,
#: 180 s handle time (10 erlangs), 20 s answer target; agents → (P(wait), SL, ASA seconds).
TEN_ERLANGS = {
    11: (0.6821, 0.3896, 122.8),
    12: (0.4494, 0.6402, 40.4),
    13: (0.2853, 0.7956, 17.1),
    14: (0.1741, 0.8884, 7.8),
}


@pytest.mark.parametrize("agents", sorted(TEN_ERLANGS))
def test_the_ten_erlang_worked_example(agents: int) -> None:
    wait, service_level, asa = TEN_ERLANGS[agents]
    figures = evaluate(Demand(100, 180, 1800), agents, answer_seconds=20, shrinkage=0)
    assert figures.traffic_erlangs == pytest.approx(10)
    assert figures.wait_probability == pytest.approx(wait, abs=5e-5)
    assert figures.service_level == pytest.approx(service_level, abs=5e-5)
    assert figures.asa_seconds == pytest.approx(asa, abs=0.05)


@pytest.mark.parametrize(
    ("agents", "traffic", "expected"),
    [
        (1, 0.5, 0.5),  # M/M/1: P(wait) = utilisation
        (2, 1.0, 1 / 3),  # M/M/2 at rho 0.5: 2 rho^2 / (1 + rho)
        (10, 6.0, 0.1013),  # textbook: 120 customers/h, 3 min each, 10 assistants: "about 0.10"
    ],
)
def test_analytic_and_textbook_cases(agents: int, traffic: float, expected: float) -> None:
    assert erlang_c(agents, traffic) == pytest.approx(expected, abs=5e-5)


def test_sizing_for_eighty_in_twenty() -> None:
    target = Target(answer_seconds=20, service_level=0.8, shrinkage=0.3, max_occupancy=0.85)
    figures = required(Demand(100, 180, 1800), target)
    assert figures.agents == 14
    assert figures.staff == 20  # 14 / (1 - 0.3)


def test_max_occupancy_can_decide() -> None:
    loose = required(Demand(1000, 180, 1800), Target(60, 0.5))
    capped = required(Demand(1000, 180, 1800), Target(60, 0.5, max_occupancy=0.8))
    assert loose.occupancy > 0.8
    assert capped.agents == math.ceil(100 / 0.8)
    assert capped.occupancy <= 0.8


def test_large_traffic_stays_finite() -> None:
    figures = required(Demand(20_000, 180, 1800), Target(20, 0.8))
    assert figures.traffic_erlangs == pytest.approx(2000)
    assert 2000 < figures.agents < 2100
    assert 0 < figures.wait_probability < 1 and math.isfinite(figures.asa_seconds)


def test_overloaded_queue() -> None:
    figures = evaluate(Demand(100, 180, 1800), 9, answer_seconds=20, shrinkage=0)
    assert figures.wait_probability == 1 and figures.service_level == 0
    assert math.isinf(figures.asa_seconds)


@given(
    traffic=st.floats(min_value=0.01, max_value=300),
    extra=st.integers(min_value=1, max_value=40),
)
def test_more_agents_never_serve_worse(traffic: float, extra: int) -> None:
    agents = math.floor(traffic) + extra
    assert erlang_c(agents + 1, traffic) <= erlang_c(agents, traffic) + 1e-12
    assert 0 <= erlang_b(agents, traffic) <= erlang_c(agents, traffic) <= 1


@given(
    volume=st.floats(min_value=1, max_value=5000),
    aht=st.floats(min_value=10, max_value=900),
    answer=st.floats(min_value=0, max_value=120),
    level=st.floats(min_value=0.05, max_value=0.95),
)
def test_required_is_the_fewest_that_meet_the_target(
    volume: float, aht: float, answer: float, level: float
) -> None:
    demand = Demand(volume, aht, 1800)
    figures = required(demand, Target(answer, level))
    assert figures.service_level >= level
    fewer = evaluate(demand, figures.agents - 1, answer_seconds=answer, shrinkage=0)
    assert fewer.service_level < level


@given(agents=st.integers(min_value=0, max_value=500), shrinkage=st.floats(0, 0.9))
def test_staff_covers_shrinkage(agents: int, shrinkage: float) -> None:
    staff = staff_for(agents, shrinkage)
    assert staff * (1 - shrinkage) >= agents - 1e-6
    assert (staff - 1) * (1 - shrinkage) < agents or agents == 0


def test_command_prints_the_contracted_fields() -> None:
    runner = CliRunner()
    args = [
        "staffing",
        "erlang-c",
        "--volume",
        "100",
        "--interval-minutes",
        "30",
        "--aht-seconds",
        "180",
        "--target-seconds",
        "20",
        "--service-level",
        "0.8",
        "--shrinkage",
        "0.3",
        "--max-occupancy",
        "0.85",
        "--json",
    ]
    sized = runner.invoke(app, args)
    assert sized.exit_code == 0, sized.output
    assert json.loads(sized.output) == {
        "traffic_erlangs": 10.0,
        "agents": 14,
        "staff": 20,
        "wait_probability": pytest.approx(0.174132, abs=1e-6),
        "service_level": pytest.approx(0.88835, abs=1e-5),
        "asa_seconds": pytest.approx(7.8359, abs=1e-4),
        "occupancy": pytest.approx(0.714286, abs=1e-6),
    }
    fixed = runner.invoke(app, [*args, "--agents", "11"])
    assert json.loads(fixed.output)["service_level"] == pytest.approx(0.3896, abs=5e-5)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--service-level", "1.5"), ("--shrinkage", "1"), ("--max-occupancy", "0")],
)
def test_command_refuses_bad_input_naming_it(option: str, value: str) -> None:
    args = {
        "--volume": "100",
        "--aht-seconds": "180",
        "--target-seconds": "20",
        "--service-level": "0.8",
    }
    args[option] = value
    result = CliRunner().invoke(
        app, ["staffing", "erlang-c", *[x for pair in args.items() for x in pair], "--json"]
    )
    assert result.exit_code == 2
    assert option.strip("-").replace("-", "_") in result.output


# -- Erlang A -------------------------------------------------------------------------------

TEN = Demand(100, 180, 1800)


@pytest.mark.parametrize("agents", [11, 12, 14])
def test_erlang_a_without_abandonment_is_erlang_c(agents: int) -> None:
    patient = erlang_a.evaluate(TEN, agents, patience_seconds=1e9, answer_seconds=20)
    classic = evaluate(TEN, agents, answer_seconds=20, shrinkage=0)
    assert patient.wait_probability == pytest.approx(classic.wait_probability, abs=1e-5)
    assert patient.service_level == pytest.approx(classic.service_level, abs=1e-5)
    assert patient.asa_seconds == pytest.approx(classic.asa_seconds, rel=1e-4)
    assert patient.abandon_probability < 1e-6


@given(
    agents=st.integers(min_value=1, max_value=40),
    volume=st.floats(min_value=1, max_value=800),
    patience=st.floats(min_value=5, max_value=900),
)
def test_erlang_a_is_consistent(agents: int, volume: float, patience: float) -> None:
    """Abandonment two ways: from each waiting customer's fate, and from Little's law on the
    queue (abandonment rate = θ · mean queue length); served + abandoned is everyone."""
    demand = Demand(volume, 180, 1800)
    result = erlang_a.evaluate(demand, agents, patience_seconds=patience, answer_seconds=20)
    below, queue = erlang_a._distribution(
        agents, demand.traffic_erlangs, volume / 1800, agents / 180, 1 / patience
    )
    mean_queue = sum(k * p for k, p in enumerate(queue))
    assert result.abandon_probability == pytest.approx(
        mean_queue / patience / (volume / 1800), rel=1e-6, abs=1e-9
    )
    assert below + sum(queue) == pytest.approx(1)
    assert 0 <= result.service_level <= 1 - result.abandon_probability + 1e-9
    assert 0 <= result.occupancy <= 1


def test_erlang_a_more_patience_more_waiting_fewer_abandons() -> None:
    impatient = erlang_a.evaluate(TEN, 10, patience_seconds=60, answer_seconds=20)
    patient = erlang_a.evaluate(TEN, 10, patience_seconds=600, answer_seconds=20)
    assert impatient.abandon_probability > patient.abandon_probability
    assert impatient.asa_seconds < patient.asa_seconds


def test_erlang_a_sizing_needs_no_more_than_erlang_c() -> None:
    target = Target(20, 0.8)
    with_abandonment = erlang_a.required(TEN, target, patience_seconds=300)
    assert with_abandonment.service_level >= 0.8
    fewer = erlang_a.evaluate(
        TEN, with_abandonment.agents - 1, patience_seconds=300, answer_seconds=20
    )
    assert fewer.service_level < 0.8
    assert with_abandonment.agents <= required(TEN, target).agents


def test_erlang_a_works_for_large_pools() -> None:
    big = erlang_a.evaluate(
        Demand(20_000, 180, 1800), 2000, patience_seconds=120, answer_seconds=20
    )
    assert 0 < big.abandon_probability < 0.05 and 0 < big.service_level < 1


def test_erlang_a_command() -> None:
    result = CliRunner().invoke(
        app,
        [
            "staffing",
            "erlang-a",
            "--volume",
            "100",
            "--aht-seconds",
            "180",
            "--target-seconds",
            "20",
            "--patience-seconds",
            "300",
            "--agents",
            "14",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) == {
        "traffic_erlangs",
        "agents",
        "staff",
        "wait_probability",
        "service_level",
        "asa_seconds",
        "occupancy",
        "abandon_probability",
    }
    assert figures["agents"] == 14 and 0 < figures["abandon_probability"] < 0.05


# -- plans ----------------------------------------------------------------------------------


def test_plan_sizes_each_interval_and_adds_up(tmp_path: Path) -> None:
    forecast = tmp_path / "forecast.csv"
    forecast.write_text(
        "interval_start,volume,aht_seconds\n"
        "2026-11-30T08:00:00+00:00,100,180\n"
        "2026-11-30T08:30:00+00:00,200,240\n"
        "2026-11-30T09:00:00+00:00,0,180\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "staffing",
            "plan",
            str(forecast),
            "--aht-seconds",
            "300",
            "--target-seconds",
            "20",
            "--service-level",
            "0.8",
            "--shrinkage",
            "0.3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    first, second, empty = body["intervals"]
    assert first["agents"] == 14 and first["staff"] == 20
    assert second["traffic_erlangs"] == pytest.approx(200 * 240 / 1800)
    assert empty["agents"] == 0
    totals = body["totals"]
    assert totals["staff_hours"] == pytest.approx((20 + second["staff"]) * 0.5)
    assert totals["peak_staff"] == second["staff"]
    expected = (100 * first["service_level"] + 200 * second["service_level"]) / 300
    assert totals["service_level"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2026-11-30T08:00:00,-5\n", "line 1, volume"),
        ("2026-11-30T08:00:00,ten\n", "line 1, volume"),
        ("yesterday,10\n", "line 1, interval_start"),
        ("interval_start,volume,colour\n2026-11-30T08:00:00,1,2\n", "unknown columns"),
        ("2026-11-30T08:00:00,1\n2026-11-30T09:00:00,1\n2026-11-30T09:10:00,1\n", "evenly"),
    ],
)
def test_plan_refuses_bad_forecasts_naming_the_place(
    tmp_path: Path, content: str, message: str
) -> None:
    forecast = tmp_path / "forecast.csv"
    forecast.write_text(content)
    result = CliRunner().invoke(
        app,
        [
            "staffing",
            "plan",
            str(forecast),
            "--aht-seconds",
            "300",
            "--target-seconds",
            "20",
            "--service-level",
            "0.8",
            "--json",
        ],
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "intervals" not in result.output  # nothing half-run is printed


def test_erlang_a_work_bound_refuses_before_the_expensive_part_and_changes_no_figure() -> None:
    """An overloaded queue of patient customers has a very long queue to follow: with a bound,
    it is refused at once; within the bound, the figures are those computed without one."""
    overloaded = Demand(1000, 180, 1800)  # 100 erlangs
    with pytest.raises(erlang_a.TooMuchWork, match="more than the 100,000 allowed"):
        erlang_a.evaluate(
            overloaded, 50, patience_seconds=1e6, answer_seconds=20, max_steps=100_000
        )
    with pytest.raises(erlang_a.TooMuchWork):
        erlang_a.required(overloaded, Target(20, 0.8), patience_seconds=1e6, max_steps=100_000)

    bounded = erlang_a.required(TEN, Target(20, 0.8), patience_seconds=300, max_steps=100_000)
    assert bounded == erlang_a.required(TEN, Target(20, 0.8), patience_seconds=300)


def test_plan_names_the_line_of_an_interval_beyond_the_sizes(tmp_path: Path) -> None:
    """The forecast's rows are the API's intervals, with the same bounds: the command says which
    line of the file is at fault."""
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("2026-11-30T08:00:00Z,10\n\n2026-11-30T08:30:00Z,1000000\n")
    result = CliRunner().invoke(
        app,
        [
            "staffing",
            "plan",
            str(forecast),
            "--aht-seconds",
            "3600",
            "--target-seconds",
            "20",
            "--service-level",
            "0.8",
            "--json",
        ],
    )
    assert result.exit_code == 2
    assert "line 3, volume: makes 2,000,000.0 erlangs" in " ".join(result.output.split())
