"""The journey stress simulation against queueing theory (Erlang C, Pollaczek-Khinchine,
Erlang A, Jackson networks), its own invariants, common random numbers, and the command."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.journey.domain.simulation.engine import compile_plan
from cxops.journey.domain.simulation.experiments import (
    RunSettings,
    compare,
    find_breaking_point,
    simulate,
)
from cxops.journey.domain.simulation.measures import SimulationFigures
from cxops.journey.domain.simulation.model import JourneyModel
from cxops.journey.formats.simulation import ModelError, load_model
from cxops.routing.domain import erlang_a
from cxops.routing.domain.staffing import Demand, erlang_c

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "journey-model.json"


def exponential(mean: float) -> dict[str, Any]:
    return {"distribution": "exponential", "mean_seconds": mean}


def one_stage(servers: int, per_hour: float, service: dict[str, Any], **stage: Any) -> JourneyModel:
    return load_model(
        {
            "arrivals_per_hour": per_hour,
            "entry": "desk",
            "stages": [{"name": "desk", "servers": servers, "service": service, **stage}],
        }
    )


def run(model: JourneyModel, **overrides: Any) -> SimulationFigures:
    return simulate(model, RunSettings.of(model, **overrides))


def erlang_c_wait(servers: int, per_hour: float, mean_seconds: float) -> float:
    traffic = per_hour * mean_seconds / 3600
    return erlang_c(servers, traffic) * mean_seconds / (servers - traffic)


# ------------------------------------------------------------------------- queueing theory


@pytest.mark.parametrize(("servers", "utilisation"), [(1, 0.5), (2, 0.6)])
def test_mmc_mean_wait_agrees_with_erlang_c(servers: int, utilisation: float) -> None:
    """About 300,000 customers: the mean wait's spread is under 2%, so 5% holds for any seed."""
    per_hour = utilisation * servers * 3600 / 180
    model = one_stage(servers, per_hour, exponential(180))
    figures = run(model, hours=300_000 / per_hour, warmup_hours=5, replications=1, seed=3)
    stage = figures.stages[0]
    expected = erlang_c_wait(servers, per_hour, 180)
    assert stage.wait_seconds_mean == pytest.approx(expected, rel=0.05)
    assert stage.utilisation == pytest.approx(utilisation, rel=0.01)
    assert stage.throughput_per_hour == pytest.approx(per_hour, rel=0.01)
    assert stage.queue_length_mean == pytest.approx(stage.queue_length_littles_law, rel=0.01)
    assert stage.abandoned == 0 and stage.served == stage.arrivals == figures.journey.completed


def test_each_stage_of_a_jackson_network_is_an_mmc_queue() -> None:
    """Poisson arrivals, exponential service and random routing (with loops back): every stage
    waits as an M/M/c queue fed at its own visit rate, arrivals times expected visits."""
    model = load_model(
        {
            "arrivals_per_hour": 40,
            "entry": "a",
            "stages": [
                {
                    "name": "a",
                    "servers": 2,
                    "service": exponential(120),
                    "routes": {"b": 0.6, "c": 0.3, "exit": 0.1},
                },
                {
                    "name": "b",
                    "servers": 3,
                    "service": exponential(240),
                    "routes": {"exit": 0.8, "a": 0.2},
                },
                {"name": "c", "servers": 1, "service": exponential(180)},
            ],
        }
    )
    visits = compile_plan(model).expected_visits
    assert visits == pytest.approx((25 / 22, 15 / 22, 7.5 / 22))
    figures = run(model, hours=3000, warmup_hours=5, replications=1, seed=2)
    for stage, spec, per_customer in zip(figures.stages, model.stages, visits, strict=True):
        mean = spec.service.mean_seconds
        expected = erlang_c_wait(spec.servers, 40 * per_customer, mean)
        assert stage.wait_seconds_mean == pytest.approx(expected, rel=0.1), stage.name
        assert stage.utilisation == pytest.approx(
            40 * per_customer * mean / 3600 / spec.servers, rel=0.02
        )


def test_fixed_service_waits_as_pollaczek_khinchine_says() -> None:
    """M/D/1: mean wait rho S / 2(1 - rho), half of M/M/1's."""
    model = one_stage(1, 12, {"distribution": "fixed", "mean_seconds": 180})
    figures = run(model, hours=10_000, warmup_hours=5, replications=1, seed=4)
    assert figures.stages[0].wait_seconds_mean == pytest.approx(0.6 * 180 / (2 * 0.4), rel=0.05)


def test_without_queueing_the_journey_lasts_exactly_the_fixed_service() -> None:
    figures = run(one_stage(1000, 60, {"distribution": "fixed", "mean_seconds": 45}), seed=5)
    journey = figures.journey
    assert journey.total_seconds_mean == pytest.approx(45, abs=1e-9)
    assert journey.total_seconds_p90 == pytest.approx(45, abs=1e-9)
    assert figures.stages[0].wait_seconds_p90 == 0


def test_lognormal_service_has_its_mean_and_spread() -> None:
    """With servers to spare the time in the journey is the service time itself."""
    service = {"distribution": "lognormal", "mean_seconds": 300, "cv": 0.8}
    figures = run(one_stage(1000, 600, service), hours=100, replications=1, seed=6)
    sigma = math.sqrt(math.log(1 + 0.8**2))
    p90 = math.exp(math.log(300) - sigma**2 / 2 + 1.2815516 * sigma)
    assert figures.journey.total_seconds_mean == pytest.approx(300, rel=0.02)
    assert figures.journey.total_seconds_p90 == pytest.approx(p90, rel=0.02)


def test_more_patience_means_fewer_hang_ups_as_erlang_a_says() -> None:
    shares = []
    for patience in (60, 300, 1200):
        model = one_stage(4, 60, exponential(240), patience_seconds=patience)
        stage = run(model, hours=1000, warmup_hours=5, replications=1, seed=7).stages[0]
        shares.append(stage.abandoned_share)
        expected = erlang_a.evaluate(
            Demand(60, 240, 3600), 4, patience_seconds=patience, answer_seconds=20
        )
        assert stage.abandoned_share == pytest.approx(expected.abandon_probability, rel=0.1)
        assert stage.wait_seconds_mean == pytest.approx(expected.asa_seconds, rel=0.1)
        assert stage.arrivals == stage.served + stage.abandoned
    assert shares == sorted(shares, reverse=True)
    patient = run(one_stage(4, 60, exponential(240)), hours=200, replications=1).stages[0]
    assert patient.abandoned == 0


def test_routing_and_entry_probabilities_are_respected() -> None:
    model = load_model(
        {
            "arrivals_per_hour": 1000,
            "entry": {"web": 0.7, "phone": 0.3},
            "stages": [
                {
                    "name": "web",
                    "servers": 500,
                    "service": exponential(30),
                    "routes": {"phone": 0.2, "exit": 0.8},
                },
                {
                    "name": "phone",
                    "servers": 500,
                    "service": exponential(60),
                    "routes": {"phone": 0.5, "exit": 0.5},
                },
            ],
        }
    )
    figures = run(model, hours=100, warmup_hours=0, replications=1, seed=8)
    web, phone = figures.stages
    customers = figures.journey.customers
    assert web.arrivals / customers == pytest.approx(0.7, abs=0.01)
    # Phone is entered by 0.3 + 0.7 * 0.2 of customers and each visit repeats half the time.
    assert phone.arrivals / customers == pytest.approx((0.3 + 0.14) * 2, abs=0.02)
    assert compile_plan(model).expected_visits == pytest.approx((0.7, 0.88))


def test_an_hourly_profile_and_the_load_multiplier_scale_arrivals() -> None:
    model = load_model(
        {
            "arrivals_per_hour": [0, 200],
            "entry": "desk",
            "stages": [{"name": "desk", "servers": 100, "service": exponential(60)}],
        }
    )
    figures = run(model, hours=2, warmup_hours=0, replications=20, seed=9)
    heavier = run(model, load=1.5, hours=2, warmup_hours=0, replications=20, seed=9)
    assert figures.journey.customers / 20 == pytest.approx(200, rel=0.05)
    assert heavier.journey.customers / 20 == pytest.approx(300, rel=0.05)


# ------------------------------------------------------------------------- determinism and CRN


def example() -> JourneyModel:
    return load_model(json.loads(EXAMPLE.read_text()))


def test_a_seed_gives_the_same_run_and_another_seed_another() -> None:
    model = example()
    assert run(model, hours=2, replications=2, seed=11) == run(
        model, hours=2, replications=2, seed=11
    )
    assert run(model, hours=2, replications=2, seed=11) != run(
        model, hours=2, replications=2, seed=12
    )


def test_an_intervention_that_changes_nothing_makes_exactly_no_difference() -> None:
    data = json.loads(EXAMPLE.read_text())
    data["intervention"] = {"name": "same again", "stages": {"triage": {"servers": 5}}}
    comparison = compare(
        load_model(data), RunSettings.of(load_model(data), hours=2, replications=3)
    )
    differences = [comparison.journey, *comparison.stages.values()]
    assert all(d.difference == d.low == d.high == 0 for each in differences for d in each.values())
    assert comparison.baseline == comparison.intervention


def test_a_change_downstream_leaves_the_customers_upstream_exactly_as_they_were() -> None:
    """The variant's loop needs more draw slots per customer; the draws stay keyed by customer
    and visit, so the first stage serves the very same customers for the very same times."""
    model = load_model(
        {
            "arrivals_per_hour": 100,
            "entry": "a",
            "stages": [
                {"name": "a", "servers": 1000, "service": exponential(60)},
                {
                    "name": "b",
                    "servers": 2,
                    "service": exponential(30),
                    "routes": {"b": 0.9, "exit": 0.1},
                },
            ],
            "intervention": {
                "name": "send half to b",
                "stages": {"a": {"routes": {"b": 0.5, "exit": 0.5}}},
            },
        }
    )
    assert compile_plan(model).visit_slots < compile_plan(model.with_intervention()).visit_slots
    comparison = compare(model, RunSettings.of(model, hours=20, replications=3))
    assert comparison.baseline.stages[0] == comparison.intervention.stages[0]
    assert comparison.intervention.stages[1].arrivals > 0


def test_another_server_lowers_the_wait_with_an_interval_below_zero() -> None:
    model = one_stage(3, 40, exponential(240))
    data = model.model_dump()
    data["intervention"] = {"name": "one more", "stages": {"desk": {"servers": 4}}}
    model = load_model(data)
    comparison = compare(model, RunSettings.of(model, hours=24, replications=5, seed=13))
    wait = comparison.stages["desk"]["wait_seconds_mean"]
    assert wait.high < 0 and wait.significant
    assert wait.difference == pytest.approx(wait.intervention - wait.baseline)
    assert comparison.journey["total_seconds_mean"].high < 0
    assert comparison.intervention.stages[0].servers == 4


def test_the_breaking_point_is_where_erlang_c_crosses_the_sla() -> None:
    """Mean wait within 60 s on 4 servers of 240 s: Erlang C crosses 60 s at 38.6 arrivals an
    hour, so from 30 an hour the breaking load is about 1.29."""
    model = one_stage(4, 30, exponential(240), sla={"wait_seconds": 60, "measure": "mean"})
    crossing = next(r / 10 for r in range(300, 480) if erlang_c_wait(4, r / 10, 240) > 60) / 30
    found = find_breaking_point(model, RunSettings.of(model, hours=1500, replications=1, seed=14))
    assert found.load is not None and found.highest_load_met is not None
    assert found.load == pytest.approx(crossing, rel=0.05)
    assert 0 < found.load - found.highest_load_met <= 0.01
    assert list(found.breaches) == ["desk"]
    assert found.tried[0] == (1.0, True)


# ------------------------------------------------------------------------- properties


@st.composite
def journeys(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 3))
    names = [f"s{i}" for i in range(size)]
    stages = []
    for name in names:
        weights = [draw(st.integers(0, 4)) for _ in names] + [draw(st.integers(1, 4))]
        routes = {
            target: weight / sum(weights)
            for target, weight in zip([*names, "exit"], weights, strict=True)
            if weight
        }
        service = draw(
            st.sampled_from(
                [
                    exponential(60),
                    {"distribution": "fixed", "mean_seconds": 40},
                    {"distribution": "lognormal", "mean_seconds": 50, "sigma": 1.0},
                ]
            )
        )
        stage = {
            "name": name,
            "servers": draw(st.integers(1, 3)),
            "service": service,
            "routes": routes,
        }
        if draw(st.booleans()):
            stage["patience_seconds"] = draw(st.sampled_from([30, 120]))
        stages.append(stage)
    return {
        "arrivals_per_hour": draw(st.sampled_from([20, 60, 150])),
        "entry": draw(st.sampled_from(names)),
        "stages": stages,
        "hours": 3,
        "warmup_hours": 0.5,
        "replications": 2,
    }


@settings(max_examples=30, deadline=None)
@given(journeys())
def test_every_measured_customer_is_accounted_for(data: dict[str, Any]) -> None:
    figures = run(load_model(data))
    journey = figures.journey
    assert journey.customers == journey.completed + journey.abandoned
    assert journey.abandoned == sum(stage.abandoned for stage in figures.stages)
    for stage in figures.stages:
        assert stage.arrivals == stage.served + stage.abandoned
        assert 0 <= stage.utilisation <= 1 + 1e-9
        assert stage.queue_length_mean >= 0
        assert stage.wait_seconds_mean is None or stage.wait_seconds_mean >= 0
    assert figures.events >= 3 * journey.completed


# ------------------------------------------------------------------------- bad models


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda m: m["stages"][2].update(servers=0), "stages[2].servers"),
        (lambda m: m["stages"][1].update(serverz=3), "stages[1].serverz"),
        (lambda m: m["stages"][1]["routes"].update(billng=0.1), "stages[1].routes.billng"),
        (lambda m: m["stages"][1]["routes"].update(exit=0.5), "stages[1].routes"),
        (lambda m: m["stages"][2]["service"].update(distribution="gamma"), "stages[2].service"),
        (lambda m: m["stages"][2]["service"].update(sigma=0.5), "stages[2].service"),
        (lambda m: m["stages"][3]["service"].update(mean_seconds=-1), "stages[3].service"),
        (lambda m: m["stages"][3].update(patience_seconds=0), "stages[3].patience_seconds"),
        (lambda m: m["stages"][3]["sla"].update(measure="p95"), "stages[3].sla.measure"),
        (lambda m: m["stages"][4].update(name="billing"), "stages[4].name"),
        (lambda m: m["stages"][4].update(name="exit"), "stages[4].name"),
        (lambda m: m["stages"][4].update(routes={"escalation": 1}), "stages[4].routes"),
        (lambda m: m.update(entry="front-door"), "entry"),
        (lambda m: m.update(arrivals_per_hour=[0, 0]), "arrivals_per_hour"),
        (lambda m: m.update(arrivals_per_hour=-5), "arrivals_per_hour"),
        (lambda m: m.update(surprise=1), "surprise"),
        (
            lambda m: m["intervention"]["stages"].update(biling={"servers": 9}),
            "intervention.stages.biling",
        ),
        (
            lambda m: m["intervention"]["stages"].update(escalation={"routes": {"escalation": 1}}),
            "intervention.stages.escalation.routes",
        ),
    ],
)
def test_bad_models_are_refused_naming_the_place(change: Any, place: str) -> None:
    data = json.loads(EXAMPLE.read_text())
    change(data)
    with pytest.raises(ModelError) as refused:
        load_model(data)
    assert any(where.startswith(place) for where, _ in refused.value.problems), refused.value
    result = CliRunner().invoke(app, ["journey", "simulate", "-", "--json"], input=json.dumps(data))
    assert result.exit_code == 2
    assert place in result.stderr
    assert result.stdout == ""


# ------------------------------------------------------------------------- the command


def test_command_prints_json_for_the_example(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["journey", "simulate", str(EXAMPLE), "--hours", "2", "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["settings"] == {
        "load": 1.0,
        "hours": 2.0,
        "warmup_hours": 1.0,
        "replications": 5,
        "seed": 3,
    }
    assert list(out["stages"]) == ["ivr", "triage", "billing", "technical", "escalation"]
    assert set(out["stages"]["billing"]) >= {
        "servers",
        "arrivals",
        "served",
        "abandoned",
        "abandoned_share",
        "wait_seconds_mean",
        "wait_seconds_p90",
        "utilisation",
        "throughput_per_hour",
        "queue_length_mean",
        "queue_length_littles_law",
        "sla",
    }
    assert set(out["journey"]) >= {
        "customers",
        "completed",
        "total_seconds_mean",
        "total_seconds_p90",
    }
    difference = out["intervention"]["difference"]
    assert difference["confidence"] == 0.95
    assert set(difference["journey"]["total_seconds_mean"]) == {
        "baseline",
        "intervention",
        "difference",
        "low",
        "high",
        "significant",
    }
    again = CliRunner().invoke(
        app, ["journey", "simulate", str(EXAMPLE), "--hours", "2", "--seed", "3", "--json"]
    )
    assert again.stdout == result.stdout


def test_command_load_breaking_point_and_summary() -> None:
    runner = CliRunner()
    args = ["journey", "simulate", str(EXAMPLE), "--hours", "2", "--replications", "2"]
    light = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    heavy = json.loads(runner.invoke(app, [*args, "--load", "1.5", "--json"]).stdout)
    assert heavy["journey"]["customers"] > 1.3 * light["journey"]["customers"]
    found = json.loads(runner.invoke(app, [*args, "--breaking-point", "--json"]).stdout)
    assert found["breaking_point"]["load"] > 0
    assert "breaking_point" in found["intervention"]
    summary = runner.invoke(app, [*args, "--breaking-point"])
    assert summary.exit_code == 0, summary.output
    assert (
        "breaking point: load x" in summary.stdout and "the interval excludes 0" in summary.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replications", "1"], "at least 2 to compare"),
        (["--load", "0"], "--load"),
        (["--hours", "-1"], "--hours"),
    ],
)
def test_command_refuses_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["journey", "simulate", str(EXAMPLE), *args, "--json"])
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""


def test_command_refuses_unreadable_and_broken_files(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["journey", "simulate", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"stages": [}')
    refused = runner.invoke(app, ["journey", "simulate", str(broken)])
    assert refused.exit_code == 2 and "line 1 column 13" in refused.stderr
    no_sla = json.loads(EXAMPLE.read_text())
    for stage in no_sla["stages"]:
        stage.pop("sla", None)
    del no_sla["intervention"]
    result = runner.invoke(
        app, ["journey", "simulate", "-", "--breaking-point"], input=json.dumps(no_sla)
    )
    assert result.exit_code == 2 and "no stage has an sla to break" in result.stderr
