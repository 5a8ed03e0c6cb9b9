"""``cxops routing replay``: the simulation's figures on hand-checked scenarios, bad scenarios
refused naming the place, and properties on random scenarios."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.routing.domain.replay import replay
from cxops.routing.formats import ScenarioError, load_scenario, report

EXAMPLE = Path(__file__).parents[2] / "examples" / "routing-scenario.json"


def run(data: dict[str, Any]) -> dict[str, Any]:
    return report(replay(load_scenario(data)))


def agent(agent_id: str, skills: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {"id": agent_id, "skills": skills, "channels": {"voice": 1}, **extra}


def task(task_id: str, at: float, handle: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "arrival_seconds": at,
        "channel": "voice",
        "handle_seconds": handle,
        **extra,
    }


def test_one_agent_three_calls_by_hand() -> None:
    result = run(
        {
            "agents": [agent("ann", {"billing": 3}, accept_seconds=2, wrap_up_seconds=10)],
            "tasks": [
                task("a", 0, 100, requires={"billing": 1}),
                task("b", 10, 50, requires={"billing": 1}),
                task("c", 20, 50, requires={"billing": 1}, tier="gold"),
            ],
        }
    )
    # a: accepted at 2, done at 112 (+wrap-up). c (gold) goes before b: accepted 114, done
    # 174; b accepted 176, done 236.
    answers = {a["task"]: (a["accepted_at"], a["finished_at"]) for a in result["assignments"]}
    assert answers == {"a": (2, 112), "c": (114, 174), "b": (176, 236)}
    totals = result["totals"]
    assert totals["answered"] == 3 and totals["simulated_seconds"] == 236
    # Targets: standard 60 s, gold 30 s. a waited 2 s (in), b 166 s (out), c 94 s (out).
    assert totals["service_level"] == pytest.approx(1 / 3)
    assert result["tiers"]["gold"]["service_level"] == 0.0
    assert result["queues"]["billing"]["answer_seconds_max"] == 166
    ann = result["agents"]["ann"]
    assert ann["occupancy"] == pytest.approx((110 + 60 + 60) / 236)
    assert ann["handle_seconds_mean"] == pytest.approx(200 / 3)


def test_patience_abandons_and_reject_passes_on() -> None:
    result = run(
        {
            "agents": [
                agent("picky", {"billing": 5}, response="reject"),
                agent("steady", {"billing": 2}),
            ],
            "tasks": [
                task("long", 0, 300, requires={"billing": 1}),
                task("impatient", 1, 60, requires={"billing": 1}, patience_seconds=30),
            ],
        }
    )
    assert [(o["task"], o["agent"], o["state"]) for o in result["offers"]] == [
        ("long", "picky", "rejected"),
        ("long", "steady", "accepted"),
        ("impatient", "picky", "rejected"),
    ]
    assert result["abandoned"] == [{"task": "impatient", "at": 31}]
    assert result["totals"]["abandoned"] == 1
    assert result["agents"]["picky"]["rejected"] == 2


def test_ignored_offers_set_the_agent_away_and_go_on() -> None:
    result = run(
        {
            "agents": [
                agent("ghost", {"billing": 5}, response="ignore"),
                agent("later", {"billing": 1}, start_seconds=100),
            ],
            "tasks": [task("t1", 0, 60), task("t2", 0, 60)],
            "offer_timeout_seconds": 10,
            "max_consecutive_timeouts": 2,
        }
    )
    assert result["agents_away"] == [{"agent": "ghost", "at": 20, "reason": "2 offers timed out"}]
    assert [(a["task"], a["accepted_at"]) for a in result["assignments"]] == [
        ("t1", 100),
        ("t2", 160),
    ]


def test_escalation_and_relaxation_show_in_the_figures() -> None:
    result = run(json.loads(EXAMPLE.read_text()))
    rules = [e["detail"].split(":")[0] for e in result["escalations"]]
    assert rules[0] == "angry-repeat-caller"
    assert result["supervisor_alerts"][0]["task"] == "c3"
    assert result["queues"]["escalations"]["tasks"] == 1
    assert (
        result["assignments"][[a["task"] for a in result["assignments"]].index("c3")]["agent"]
        == "cho"
    )
    assert result["relaxations"], "the example waits long enough to relax"


def test_learning_raises_a_strong_agent_and_respects_pins() -> None:
    tasks = [
        task(f"t{i}", i * 100, 60, requires={"billing": 1}, resolved_first_contact=True, csat=5)
        for i in range(40)
    ]
    base = {"tasks": tasks, "learning": {"min_outcomes": 10, "rate": 0.1}}
    learned = run({**base, "agents": [agent("ann", {"billing": 3})]})
    [change] = learned["proficiency_changes"]
    assert change["agent"] == "ann" and change["change"].startswith("billing 3->4")
    pinned = run({**base, "agents": [agent("ann", {"billing": 3}, pinned_skills=["billing"])]})
    assert pinned["proficiency_changes"] == []


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda s: s["tasks"][1].update(colour="red"), "tasks[1].colour"),
        (lambda s: s["tasks"][0].update(arrival_seconds=-1), "tasks[0].arrival_seconds"),
        (lambda s: s["tasks"][2].update(channel="fax"), "tasks[2].channel"),
        (lambda s: s["agents"][1]["skills"].update(billing=7), "agents[1].skills.billing"),
        (lambda s: s["tasks"][0]["requires"].update(billing=0), "tasks[0].requires.billing"),
        (lambda s: s["tasks"][0].update(tier="diamond"), "tasks[0].tier"),
        (lambda s: s["escalation"][0]["then"].update(move_to_queue="x"), "escalation[0].then"),
        (lambda s: s["relaxation"][0].update(after_seconds=-5), "relaxation[0].after_seconds"),
        (lambda s: s.update(surprise=1), "surprise"),
    ],
)
def test_bad_scenarios_are_refused_naming_the_place(change: Any, place: str) -> None:
    scenario = json.loads(EXAMPLE.read_text())
    change(scenario)
    with pytest.raises(ScenarioError) as refused:
        load_scenario(scenario)
    assert any(where.startswith(place) for where, _ in refused.value.problems), refused.value
    result = CliRunner().invoke(
        app, ["routing", "replay", "-", "--json"], input=json.dumps(scenario)
    )
    assert result.exit_code == 2
    assert place in result.stderr
    assert result.stdout == ""  # nothing half-run is printed


def test_command_prints_json_and_a_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    as_json = runner.invoke(app, ["routing", "replay", str(EXAMPLE), "--json"])
    assert as_json.exit_code == 0, as_json.output
    result = json.loads(as_json.stdout)
    assert set(result) >= {"offers", "assignments", "queues", "tiers", "agents", "escalations"}
    summary = runner.invoke(app, ["routing", "replay", str(EXAMPLE)])
    assert summary.exit_code == 0 and "service level" in summary.stdout
    broken = tmp_path / "broken.json"
    broken.write_text('{"agents": [}')
    refused = runner.invoke(app, ["routing", "replay", str(broken)])
    assert refused.exit_code == 2 and "line 1 column 13" in refused.output


# ----------------------------------------------------------------------------- properties

channels = st.sampled_from(["voice", "chat"])
agent_specs = st.lists(
    st.fixed_dictionaries(
        {
            "skills": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(1, 5), max_size=2),
            "channels": st.dictionaries(channels, st.integers(1, 2), min_size=1),
            "response": st.sampled_from(["accept", "accept", "accept", "reject", "ignore"]),
            "accept_seconds": st.sampled_from([0, 1, 3]),
        }
    ),
    min_size=1,
    max_size=4,
)
task_specs = st.lists(
    st.fixed_dictionaries(
        {
            "arrival_seconds": st.integers(0, 100),
            "channel": channels,
            "handle_seconds": st.integers(1, 60),
            "requires": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(1, 4), max_size=2),
            "priority": st.integers(0, 2),
            "tier": st.sampled_from(["standard", "gold", "platinum"]),
        },
        optional={"patience_seconds": st.integers(1, 80)},
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents=agent_specs, tasks=task_specs)
def test_replays_are_consistent_and_repeatable(
    agents: list[dict[str, Any]], tasks: list[dict[str, Any]]
) -> None:
    served = {c for a in agents for c in a["channels"]}
    scenario = {
        "agents": [{"id": f"ag{i}", **a} for i, a in enumerate(agents)],
        "tasks": [{"id": f"t{i}", **t} for i, t in enumerate(tasks) if t["channel"] in served],
        "relaxation": [{"after_seconds": 20, "lower_by": 2}],
        "escalation": [
            {"name": "wait", "when": {"wait_seconds_at_least": 30}, "then": {"raise_priority": 1}}
        ],
        "offer_timeout_seconds": 5,
    }
    first = run(copy.deepcopy(scenario))
    assert run(copy.deepcopy(scenario)) == first
    totals = first["totals"]
    assert totals["answered"] + totals["abandoned"] + totals["unanswered"] == totals["tasks"]
    answered = [a["task"] for a in first["assignments"]]
    assert len(answered) == len(set(answered))
    by_id = {t["id"]: t for t in scenario["tasks"]}
    capacity = {a["id"]: a["channels"] for a in scenario["agents"]}
    moments: list[tuple[float, int, str, str]] = []
    for a in first["assignments"]:
        assert a["accepted_at"] >= a["arrived_at"]
        channel = by_id[a["task"]]["channel"]
        moments += [
            (a["accepted_at"], 1, a["agent"], channel),
            (a["finished_at"], -1, a["agent"], channel),
        ]
    load: dict[tuple[str, str], int] = {}
    for _, delta, agent_id, channel in sorted(moments, key=lambda m: (m[0], m[1])):
        load[(agent_id, channel)] = load.get((agent_id, channel), 0) + delta
        assert load[(agent_id, channel)] <= capacity[agent_id][channel]
    for offer in first["offers"]:
        if offer["state"] == "accepted":
            assert scenario["agents"][int(offer["agent"][2:])]["response"] == "accept"
