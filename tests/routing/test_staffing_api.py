"""``POST /v1/routing/staffing/{erlang-c,erlang-a,plan}``: the routing service in-process, its
answers against ``cxops staffing ... --json`` for the same input (byte for byte, once the API's
JSON is printed as the command prints it), bad input refused with the field named, and who may
call."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from typer.testing import CliRunner

from cxops.cli.main import app as cxops
from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from tests.support.services import RunningService, auth

STAFFING = "/v1/routing/staffing"
TENANT = "acme"
PLANNER = auth(TENANT, Role.OPS_LEAD)

#: The README's example: 100 contacts in 30 minutes, 180 s handle time, 80% within 20 s.
README_ERLANG_C = {
    "volume": 100,
    "interval_minutes": 30,
    "aht_seconds": 180,
    "target_seconds": 20,
    "service_level": 0.8,
    "shrinkage": 0.3,
    "max_occupancy": 0.85,
}
README_FIGURES = {
    "traffic_erlangs": 10.0,
    "agents": 14,
    "staff": 20,
    "wait_probability": 0.174132,
    "service_level": 0.88835,
    "asa_seconds": 7.835937,
    "occupancy": 0.714286,
}
README_ERLANG_A = {
    "volume": 100,
    "aht_seconds": 180,
    "target_seconds": 20,
    "service_level": 0.8,
    "patience_seconds": 300,
    "agents": 14,
}

FORECAST = [
    {"interval_start": "2026-11-30T08:00:00Z", "volume": 100, "aht_seconds": 180},
    {"interval_start": "2026-11-30T08:30:00Z", "volume": 200, "aht_seconds": 240},
    {"interval_start": "2026-11-30T09:00:00Z", "volume": 0, "aht_seconds": 180},
    {"interval_start": "2026-11-30T09:30:00Z", "volume": 57},
]
PLAN_OPTIONS = {
    "aht_seconds": 240,
    "target_seconds": 20,
    "service_level": 0.8,
    "shrinkage": 0.3,
    "max_occupancy": 0.9,
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The staffing endpoints touch no database; the service still checks its own at start-up,
    so a migrated SQLite file is all these tests need (no PostgreSQL run)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}"


def options(body: dict[str, Any]) -> list[str]:
    return [x for name, value in body.items() for x in (f"--{name.replace('_', '-')}", str(value))]


def command(*args: str) -> str:
    """What ``cxops staffing ... --json`` prints."""
    result = CliRunner().invoke(cxops, ["staffing", *args, "--json"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def as_printed(response: Response) -> str:
    """The API's answer printed as the command prints JSON: equal text means equal keys, key
    order, types (``14`` is not ``14.0``) and figures."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return json.dumps(response.json())


async def post(
    routing: RunningService, path: str, body: object, headers: dict[str, str] = PLANNER
) -> Response:
    return await routing.client.post(f"{STAFFING}/{path}", json=body, headers=headers)


def assert_invalid(response: Response, field: str, code: str | None = None) -> dict[str, Any]:
    """A 422 problem that names ``field`` (and, given, with that code); the error found."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["status"] == 422
    named = [e for e in problem["errors"] if e["field"] == field]
    assert named, problem["errors"]
    if code is not None:
        assert named[0]["code"] == code, named
    return named[0]


# -- the same figures as the command ------------------------------------------------------------


async def test_erlang_c_is_the_readme_example_and_the_command(routing: RunningService) -> None:
    answer = await post(routing, "erlang-c", README_ERLANG_C)

    assert answer.json() == README_FIGURES
    assert as_printed(answer) == command("erlang-c", *options(README_ERLANG_C))


@pytest.mark.parametrize(
    "body",
    [
        {**README_ERLANG_C, "agents": 12},  # what 12 achieve
        {**README_ERLANG_C, "agents": 9},  # too few: the wait has no end (asa null)
        {"volume": 0, "aht_seconds": 300, "target_seconds": 0, "service_level": 0.5},
        {"volume": 20_000, "aht_seconds": 180, "target_seconds": 20, "service_level": 0.9},
    ],
    ids=["12-agents", "overloaded", "no-traffic", "2000-erlangs"],
)
async def test_erlang_c_answers_as_the_command_does(
    routing: RunningService, body: dict[str, Any]
) -> None:
    answer = await post(routing, "erlang-c", body)

    assert as_printed(answer) == command("erlang-c", *options(body))


@pytest.mark.parametrize(
    "body",
    [
        README_ERLANG_A,
        {key: value for key, value in README_ERLANG_A.items() if key != "agents"},  # sizing
        {**README_ERLANG_A, "volume": 0},
        {**README_ERLANG_A, "agents": 8, "patience_seconds": 60, "shrinkage": 0.25},
    ],
    ids=["14-agents", "sizing", "no-traffic", "overloaded"],
)
async def test_erlang_a_answers_as_the_command_does(
    routing: RunningService, body: dict[str, Any]
) -> None:
    answer = await post(routing, "erlang-a", body)

    assert set(answer.json()) == {*README_FIGURES, "abandon_probability"}
    assert as_printed(answer) == command("erlang-a", *options(body))


async def test_the_plan_answers_as_the_command_does(
    routing: RunningService, tmp_path: Path
) -> None:
    """The same forecast as CSV (its starts with a +01:00 offset, or none: UTC) and as a body:
    the same plan, starts returned in UTC."""
    csv = tmp_path / "forecast.csv"
    csv.write_text(
        "interval_start,volume,aht_seconds\n"
        "2026-11-30T09:00:00+01:00,100,180\n"
        "2026-11-30T09:30:00+01:00,200,240\n"
        "2026-11-30T09:00:00,0,180\n"
        "2026-11-30T09:30:00,57\n"
    )
    answer = await post(routing, "plan", {"intervals": FORECAST, **PLAN_OPTIONS})

    assert as_printed(answer) == command("plan", str(csv), *options(PLAN_OPTIONS))
    plan = answer.json()
    assert plan["interval_minutes"] == 30
    assert [row["interval_start"] for row in plan["intervals"]] == [
        row["interval_start"] for row in FORECAST
    ]
    first, second, empty, default_aht = plan["intervals"]
    assert {key: first[key] for key in README_FIGURES} == {
        **README_FIGURES,
        "staff": 20,  # 14 agents after 30% shrinkage
    }
    assert (second["agents"], empty["agents"]) == (32, 0)
    assert default_aht["aht_seconds"] == 240  # the plan's, where the interval has none
    totals = plan["totals"]
    assert totals["volume"] == 357
    assert totals["peak_agents"] == 32
    assert totals["staff_hours"] == pytest.approx(
        sum(row["staff"] for row in plan["intervals"]) / 2
    )
    contact_weighted = sum(row["volume"] * row["service_level"] for row in plan["intervals"])
    assert totals["service_level"] == pytest.approx(contact_weighted / 357, abs=1e-6)


async def test_a_plan_interval_length_is_given_or_the_spacing_or_thirty_minutes(
    routing: RunningService,
) -> None:
    hourly = [
        {"interval_start": "2026-11-30T08:00:00Z", "volume": 200},
        {"interval_start": "2026-11-30T09:00:00Z", "volume": 200},
    ]
    spaced = await post(routing, "plan", {"intervals": hourly, **PLAN_OPTIONS})
    given = await post(
        routing, "plan", {"intervals": hourly, **PLAN_OPTIONS, "interval_minutes": 30}
    )
    single = await post(routing, "plan", {"intervals": hourly[:1], **PLAN_OPTIONS})

    assert spaced.json()["interval_minutes"] == 60
    assert spaced.json()["intervals"][0]["traffic_erlangs"] == pytest.approx(200 * 240 / 3600)
    assert given.json()["interval_minutes"] == 30
    assert given.json()["intervals"][0]["traffic_erlangs"] == pytest.approx(200 * 240 / 1800)
    assert single.json()["interval_minutes"] == 30


async def test_erlang_a_tends_to_erlang_c_as_patience_grows(routing: RunningService) -> None:
    """Customers who never hang up are Erlang C's: the gap in every figure shrinks as patience
    grows, abandonment vanishes, and sizing comes to need Erlang C's agents."""
    interval = {"volume": 100, "aht_seconds": 180, "target_seconds": 20, "service_level": 0.8}
    classic = (await post(routing, "erlang-c", {**interval, "agents": 14})).json()
    compared = ("wait_probability", "service_level", "asa_seconds", "occupancy")
    gaps: list[float] = []
    abandons: list[float] = []
    for patience in (300, 3_000, 30_000, 300_000, 1_000_000):
        body = {**interval, "agents": 14, "patience_seconds": patience}
        figures = (await post(routing, "erlang-a", body)).json()
        gaps.append(max(abs(figures[name] - classic[name]) / classic[name] for name in compared))
        abandons.append(figures["abandon_probability"])

    assert gaps == sorted(gaps, reverse=True) and len(set(gaps)) == len(gaps)
    assert abandons == sorted(abandons, reverse=True)
    assert gaps[0] > 0.3  # impatient customers change the figures a lot (ASA halves)
    assert gaps[-1] < 1e-3 and abandons[-1] < 1e-5

    sized_c = (await post(routing, "erlang-c", interval)).json()
    sized = [
        (await post(routing, "erlang-a", {**interval, "patience_seconds": patience})).json()
        for patience in (300, 86_400)
    ]
    assert [figures["agents"] for figures in sized] == [13, sized_c["agents"]] == [13, 14]


# -- bad input: 422 problem+json naming the field ----------------------------------------------

ERLANG_C_BASE = {"volume": 100, "aht_seconds": 180, "target_seconds": 20, "service_level": 0.8}
ERLANG_A_BASE = {**ERLANG_C_BASE, "patience_seconds": 300}


def plan_body(**changes: Any) -> dict[str, Any]:
    return {"intervals": FORECAST, **PLAN_OPTIONS, **changes}


def half_hours(count: int) -> list[str]:
    first = datetime(2026, 11, 30, tzinfo=UTC)
    return [(first + timedelta(minutes=30 * i)).isoformat() for i in range(count)]


def starts(*times: str) -> list[dict[str, Any]]:
    return [{"interval_start": time, "volume": 10} for time in times]


@pytest.mark.parametrize(
    ("path", "body", "field", "code"),
    [
        ("erlang-c", {**ERLANG_C_BASE, "volume": -1}, "volume", "greater_than_equal"),
        ("erlang-c", {**ERLANG_C_BASE, "volume": "100"}, "volume", "float_type"),
        ("erlang-c", {**ERLANG_C_BASE, "aht_seconds": 0}, "aht_seconds", "greater_than_equal"),
        ("erlang-c", {**ERLANG_C_BASE, "service_level": 0}, "service_level", "greater_than"),
        ("erlang-c", {**ERLANG_C_BASE, "service_level": 1}, "service_level", "less_than"),
        ("erlang-c", {**ERLANG_C_BASE, "service_level": 1.5}, "service_level", "less_than"),
        ("erlang-c", {**ERLANG_C_BASE, "shrinkage": -0.1}, "shrinkage", "greater_than_equal"),
        ("erlang-c", {**ERLANG_C_BASE, "shrinkage": 1}, "shrinkage", "less_than"),
        ("erlang-c", {**ERLANG_C_BASE, "max_occupancy": 0}, "max_occupancy", "greater_than"),
        ("erlang-c", {**ERLANG_C_BASE, "max_occupancy": 1.01}, "max_occupancy", None),
        ("erlang-c", {**ERLANG_C_BASE, "agents": 12.5}, "agents", "int_type"),
        ("erlang-c", {**ERLANG_C_BASE, "agents": 100_001}, "agents", "less_than_equal"),
        ("erlang-c", {**ERLANG_C_BASE, "colour": "red"}, "colour", "extra_forbidden"),
        ("erlang-c", {"volume": 100}, "service_level", "missing"),
        (
            "erlang-c",
            {**ERLANG_C_BASE, "volume": 1_000_000, "aht_seconds": 3_600},
            "volume",
            "traffic_too_large",
        ),
        (
            "erlang-c",
            {**ERLANG_C_BASE, "volume": 20_000, "max_occupancy": 0.01},
            "max_occupancy",
            "too_many_agents",
        ),
        ("erlang-a", {**ERLANG_A_BASE, "patience_seconds": 0}, "patience_seconds", None),
        ("erlang-a", {**ERLANG_A_BASE, "agents": 0}, "agents", "greater_than_equal"),
        ("erlang-a", {**ERLANG_A_BASE, "volume": -5}, "volume", "greater_than_equal"),
        ("plan", plan_body(intervals=[]), "intervals", "too_short"),
        ("plan", plan_body(service_level=1), "service_level", "less_than"),
        ("plan", plan_body(max_occupancy=0), "max_occupancy", "greater_than"),
        ("plan", plan_body(shrinkage=1), "shrinkage", "less_than"),
        (
            "plan",
            plan_body(intervals=[FORECAST[0], {**FORECAST[1], "volume": -1}]),
            "intervals.1.volume",
            "greater_than_equal",
        ),
        (
            "plan",
            plan_body(
                intervals=starts(
                    "2026-11-30T08:00:00Z", "2026-11-30T08:30:00Z", "2026-11-30T09:30:00Z"
                )
            ),
            "intervals.2.interval_start",
            "uneven_starts",
        ),
        (
            "plan",
            plan_body(intervals=starts("2026-11-30T08:30:00Z", "2026-11-30T08:00:00Z")),
            "intervals.1.interval_start",
            "uneven_starts",
        ),
        (
            "plan",
            plan_body(intervals=starts("2026-11-30T08:00:00Z", "2026-11-30T08:00:00Z")),
            "intervals.1.interval_start",
            "uneven_starts",
        ),
        (  # written half an hour later, but at +01:00: half an hour earlier
            "plan",
            plan_body(intervals=starts("2026-11-30T08:00:00Z", "2026-11-30T08:30:00+01:00")),
            "intervals.1.interval_start",
            "uneven_starts",
        ),
        (
            "plan",
            plan_body(intervals=starts("yesterday")),
            "intervals.0.interval_start",
            "datetime_format",
        ),
        (
            "plan",
            plan_body(intervals=starts("2026-11-30T08:00")),  # no seconds: not RFC 3339
            "intervals.0.interval_start",
            "datetime_format",
        ),
        (
            "plan",
            plan_body(intervals=[{"interval_start": 1767225600, "volume": 1}]),
            "intervals.0.interval_start",
            "datetime_type",
        ),
        (
            "plan",
            plan_body(intervals=[{**FORECAST[0], "volume": 1_000_000, "aht_seconds": 3_600}]),
            "intervals.0.volume",
            "traffic_too_large",
        ),
        (
            "plan",
            plan_body(
                intervals=[  # 40,000 erlangs each: within bounds alone, not 100 together
                    {"interval_start": start, "volume": 40_000} for start in half_hours(100)
                ],
                aht_seconds=1_800,
            ),
            "intervals",
            "plan_too_large",
        ),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    routing: RunningService, path: str, body: dict[str, Any], field: str, code: str | None
) -> None:
    response = await post(routing, path, body)

    assert_invalid(response, field, code)


async def test_a_plan_holds_at_most_ten_thousand_intervals(routing: RunningService) -> None:
    intervals = [{"interval_start": "2026-01-01T00:00:00Z", "volume": 1} for _ in range(10_001)]
    response = await post(routing, "plan", plan_body(intervals=intervals))

    assert_invalid(response, "intervals", "too_long")


async def test_a_start_without_an_offset_is_utc(routing: RunningService) -> None:
    naive = plan_body(intervals=starts("2026-11-30T08:00:00", "2026-11-30T08:30:00"))
    utc = plan_body(intervals=starts("2026-11-30T08:00:00Z", "2026-11-30T08:30:00Z"))

    answer = await post(routing, "plan", naive)

    assert answer.status_code == 200, answer.text
    assert answer.json() == (await post(routing, "plan", utc)).json()
    assert answer.json()["intervals"][0]["interval_start"] == "2026-11-30T08:00:00Z"


async def test_erlang_a_refuses_a_calculation_too_large_to_answer_quickly(
    routing: RunningService,
) -> None:
    """An overloaded queue of very patient customers has a queue far too long to follow in a
    request (the command computes it, for as long as it takes)."""
    body = {**ERLANG_A_BASE, "volume": 1_000, "agents": 50, "patience_seconds": 1_000_000}

    response = await post(routing, "erlang-a", body)

    error = assert_invalid(response, "body", "too_much_work")
    assert response.json()["type"].endswith("/calculation-too-large")
    assert "2,000,000 allowed" in error["message"]


# -- who may call -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [("erlang-c", ERLANG_C_BASE), ("erlang-a", ERLANG_A_BASE), ("plan", plan_body())],
)
async def test_a_token_and_a_planning_role_are_needed(
    routing: RunningService, path: str, body: dict[str, Any]
) -> None:
    anonymous = await post(routing, path, body, headers={})
    agent = await post(routing, path, body, headers=auth(TENANT, Role.AGENT))

    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert agent.status_code == 403
    assert agent.json()["type"].endswith("/forbidden")


@pytest.mark.parametrize(
    "role", [Role.ADMIN, Role.OPS_LEAD, Role.SUPERVISOR, Role.INTEGRATION, Role.VIEWER]
)
async def test_every_planning_role_may_compute(routing: RunningService, role: Role) -> None:
    response = await post(routing, "erlang-c", README_ERLANG_C, headers=auth(TENANT, role))

    assert response.status_code == 200
    assert response.json() == README_FIGURES


# -- the OpenAPI document -----------------------------------------------------------------------


async def test_the_openapi_document_describes_the_staffing_endpoints(
    routing: RunningService,
) -> None:
    doc = (await routing.client.get("/openapi.json")).json()
    expected = {
        "erlang-c": ("ErlangCRequest", "StaffingFigures"),
        "erlang-a": ("ErlangARequest", "AbandonmentFigures"),
        "plan": ("StaffingPlanRequest", "StaffingPlan"),
    }
    for path, (request, answer) in expected.items():
        operation = doc["paths"][f"{STAFFING}/{path}"]["post"]
        assert set(doc["paths"][f"{STAFFING}/{path}"]) == {"post"}
        assert operation["tags"] == ["staffing"] and operation["summary"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{request}"}
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{answer}"}
        assert {"401", "403", "422"} <= set(operation["responses"])
        assert doc["components"]["schemas"][request]["additionalProperties"] is False
    interval = doc["components"]["schemas"]["ForecastInterval"]["properties"]
    assert interval["interval_start"]["format"] == "date-time"
    assert (
        doc["components"]["schemas"]["StaffingPlanRequest"]["properties"]["intervals"]["maxItems"]
        == 10_000
    )
