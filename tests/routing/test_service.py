"""The routing service over REST, on SQLite and PostgreSQL, with its events read back from the
real CX_ROUTING stream: a platform's day (agents log in, tasks arrive, offers, accept, wrap,
complete), refusals that change nothing, time (offer timeouts, time to live) and restarts."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from prometheus_client.parser import text_string_to_metric_families

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.common.migrations import upgrade
from cxops.routing.app import SPEC, create_app
from cxops.routing.changes import TASKS
from cxops.routing.settings import RoutingSettings
from cxops.routing.switchboard import Switchboard
from tests.support.services import RunningService, auth, eventually, running, settings_for

TENANT = "acme"
OTHER = "globex"
ADMIN = auth(TENANT)
UNBOUND_AGENT = auth(TENANT, Role.AGENT)


def agent_key(agent_id: str) -> dict[str, str]:
    """An agent desktop's key, bound to its agent."""
    return auth(TENANT, Role.AGENT, agent_id=agent_id)


StartRouting = Callable[..., AbstractAsyncContextManager[RunningService]]


@pytest.fixture
async def start_routing(database_url: str, nats_server: NatsServer) -> StartRouting:
    """Start the routing service on one migrated database, as often as a test needs (a restart
    is a second start on the same database)."""
    await upgrade(database_url, SPEC.migrations)

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[RunningService]:
        settings = settings_for(
            RoutingSettings, database_url=database_url, nats_url=nats_server.url, **overrides
        )
        async with running(create_app(settings)) as service:
            yield service

    return start


async def post(
    service: RunningService, path: str, body: Any = None, headers: dict[str, str] = ADMIN
) -> Any:
    return await service.client.post(f"/v1/routing{path}", json=body, headers=headers)


async def agent(
    service: RunningService,
    external_id: str,
    skills: dict[str, int],
    channels: dict[str, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    response = await post(
        service,
        "/agents",
        {
            "external_id": external_id,
            "name": external_id.title(),
            "team": "care",
            "skills": skills,
            "channels": channels or {"voice": 1},
            "status": "available",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def queue(
    service: RunningService, name: str, requires: dict[str, int], **extra: Any
) -> dict[str, Any]:
    response = await post(
        service,
        "/queues",
        {
            "name": name,
            "channel": "voice",
            "requires": requires,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def task(service: RunningService, **body: Any) -> dict[str, Any]:
    response = await post(service, "/tasks", {"queue": "billing", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def pending_offers(service: RunningService, agent_id: str) -> list[dict[str, Any]]:
    response = await service.client.get(
        f"/v1/routing/agents/{agent_id}/reservations?state=pending", headers=ADMIN
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def routing_events(
    nats_client: NatsClient, at_least: int
) -> list[tuple[str, dict[str, Any]]]:
    """Every event on CX_ROUTING so far, once there are ``at_least``, as (subject, payload)."""
    js = nats_client.jetstream()

    async def enough() -> int:
        info = await js.stream_info("CX_ROUTING")
        return int(info.state.messages) >= at_least and int(info.state.messages)

    total = await eventually(enough, what=f"{at_least} routing events")
    subscription = await js.pull_subscribe("cx.routing.>", stream="CX_ROUTING")
    try:
        messages = []
        while len(messages) < total:
            messages += await subscription.fetch(total - len(messages), timeout=5)
    finally:
        await subscription.unsubscribe()
    for message in messages:
        assert (message.headers or {})["ce-tenant"] == TENANT
    return [(m.subject, json.loads(m.data)) for m in messages]


async def test_a_platforms_day(start_routing: StartRouting, nats_client: NatsClient) -> None:
    async with start_routing() as routing:
        await queue(
            routing,
            "billing",
            {"billing": 3},
            service_level={"answer_within_seconds": 20, "target": 0.8},
        )
        ana = await agent(routing, "ana", {"billing": 5})
        bo = await agent(routing, "bo", {"billing": 3})
        await agent(routing, "cy", {"sales": 5})  # not eligible

        first = await task(routing, external_id="call-1", customer_ref="cust-1", priority=2)
        assert first["state"] == "reserved"  # matched before the answer
        [offer] = await pending_offers(routing, ana["id"])  # the strongest agent first
        assert offer["task_id"] == first["id"]
        second = await task(routing, external_id="call-2")
        [offer_two] = await pending_offers(routing, bo["id"])
        assert offer_two["task_id"] == second["id"]
        third = await task(routing, external_id="call-3")
        assert third["state"] == "pending"  # everyone eligible is busy

        as_ana, as_bo = agent_key(ana["id"]), agent_key(bo["id"])
        for other in (as_bo, UNBOUND_AGENT):  # only ana answers ana's offers
            refused = await post(routing, f"/reservations/{offer['id']}/accept", headers=other)
            assert refused.status_code == 403, refused.text
        accepted = await post(routing, f"/reservations/{offer['id']}/accept", headers=as_ana)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "accepted"
        again = await post(routing, f"/reservations/{offer['id']}/accept", headers=as_ana)
        assert again.status_code == 409
        assert "already accepted" in again.json()["detail"]

        rejected = await post(routing, f"/reservations/{offer_two['id']}/reject", headers=as_bo)
        assert rejected.json()["state"] == "rejected"
        # The rejected task is never offered to bo again; bo takes the next one instead.
        [offer_three] = await pending_offers(routing, bo["id"])
        assert offer_three["task_id"] == third["id"]

        assert (await post(routing, f"/tasks/{first['id']}/wrap", headers=as_bo)).status_code == 403
        wrapped = await post(routing, f"/tasks/{first['id']}/wrap", headers=as_ana)
        assert wrapped.json()["state"] == "wrapping"
        assert (await pending_offers(routing, ana["id"])) == []  # wrapping holds the capacity
        done = await post(
            routing,
            f"/tasks/{first['id']}/complete",
            {"handle_seconds": 240, "resolved": True, "csat": 5},
            as_ana,
        )
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "completed"
        # ana is free again and takes the task bo turned down.
        [next_for_ana] = await pending_offers(routing, ana["id"])
        assert next_for_ana["task_id"] == second["id"]

        detail = (
            await routing.client.get(f"/v1/routing/tasks/{second['id']}", headers=ADMIN)
        ).json()
        assert [o["state"] for o in detail["offers"]] == ["rejected", "pending"]
        assert detail["agent_id"] is None and detail["state"] == "reserved"
        finished = (
            await routing.client.get(f"/v1/routing/tasks/{first['id']}", headers=ADMIN)
        ).json()
        assert finished["agent_id"] == ana["id"] and finished["handle_seconds"] == 240
        assert finished["resolved"] is True and finished["wait_seconds"] >= 0

        await routing.outbox_drained()
        published = await routing_events(nats_client, 12)
        subjects = [s.removeprefix("cx.routing.").removesuffix(".v1") for s, _ in published]
        assert subjects.count("agent.status_changed") == 3
        assert [s for s in subjects if s.startswith("task.")] == [
            "task.created",
            "task.offered",  # call-1 to ana
            "task.created",
            "task.offered",  # call-2 to bo
            "task.created",  # call-3 waits
            "task.assigned",  # ana accepts call-1
            "task.offered",  # bo rejected call-2; call-3 goes to bo
            "task.completed",  # ana done
            "task.offered",  # call-2 to ana
        ]
        completed = next(p for s, p in published if s.endswith("task.completed.v1"))
        assert completed["agent_id"] == ana["id"] and completed["team"] == "care"
        assert completed["queue"] == "billing" and completed["channel"] == "voice"
        assert completed["handle_seconds"] == 240 and completed["resolved"] is True


async def test_refusals_name_the_field_and_change_nothing(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 3})
        ana = await agent(routing, "ana", {"billing": 5})
        before = (await routing.count("routing_tasks"), await routing.count("cx_outbox"))

        cases: list[tuple[str, dict[str, Any], int, str]] = [
            ("/tasks", {"queue": "nope"}, 422, "queue"),
            (
                "/tasks",
                {"requires": {"chemistry": 2}, "channel": "voice"},
                422,
                "requires.chemistry",
            ),
            ("/tasks", {"requires": {"billing": 2}, "channel": "fax"}, 422, "channel"),
            ("/tasks", {"queue": "billing", "tier": "diamond"}, 422, "tier"),
            ("/tasks", {"queue": "billing", "requires": {"billing": 1}}, 422, "body"),
            (
                "/agents",
                {"external_id": "x", "name": "X", "channels": {"voice": -1}},
                422,
                "channels.voice",
            ),
            (
                "/agents",
                {
                    "external_id": "x",
                    "name": "X",
                    "channels": {"voice": 1},
                    "skills": {"billing": 6},
                },
                422,
                "skills.billing",
            ),
            (
                "/agents",
                {"external_id": "ana", "name": "Again", "channels": {"voice": 1}},
                409,
                "external_id",
            ),
            ("/queues", {"name": "billing", "channel": "voice"}, 409, "name"),
        ]
        for path, body, status, field in cases:
            response = await post(routing, path, body)
            assert response.status_code == status, (path, body, response.text)
            assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
            fields = [e["field"] for e in response.json().get("errors", [])]
            assert any(f == field or f.startswith(f"{field}.") for f in fields), (body, fields)

        # Wrong states: accepted, completed and canceled tasks refuse what does not follow.
        waiting = await task(routing)
        [offer] = await pending_offers(routing, ana["id"])
        complete = await post(
            routing, f"/tasks/{waiting['id']}/complete", {"handle_seconds": 1, "resolved": True}
        )
        assert complete.status_code == 409 and complete.json()["state"] == "reserved"
        canceled = await post(routing, f"/tasks/{waiting['id']}/cancel", {"reason": "abandoned"})
        assert canceled.json()["state"] == "abandoned"
        late = await post(routing, f"/reservations/{offer['id']}/accept")
        assert late.status_code == 409 and late.json()["state"] == "canceled"
        assert (await post(routing, f"/tasks/{waiting['id']}/wrap")).status_code == 409
        assert (await post(routing, f"/tasks/{uuid.uuid4()}/wrap")).status_code == 404

        # Another tenant sees none of it.
        other = auth(OTHER)
        assert (
            await post(routing, f"/reservations/{offer['id']}/accept", headers=other)
        ).status_code == 404
        listed = await routing.client.get("/v1/routing/tasks", headers=other)
        assert listed.json() == []
        assert (
            await routing.client.get(f"/v1/routing/agents/{ana['id']}", headers=other)
        ).status_code == 404

        after = (await routing.count("routing_tasks"), await routing.count("cx_outbox"))
        assert after[0] == before[0] + 1  # only the task that was accepted


async def test_a_repeated_task_returns_the_first(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 3})
        first = await task(routing, external_id="call-9")
        again = await post(routing, "/tasks", {"queue": "billing", "external_id": "call-9"})
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first["id"]
        keyed = {**ADMIN, "Idempotency-Key": "k-1"}
        one = await post(routing, "/tasks", {"queue": "billing"}, keyed)
        two = await post(routing, "/tasks", {"queue": "billing"}, keyed)
        assert one.json()["id"] == two.json()["id"]
        different = await post(routing, "/tasks", {"queue": "billing", "priority": 3}, keyed)
        assert different.status_code == 409
        assert await routing.count("routing_tasks") == 2


async def test_a_burst_is_committed_together_and_repeats_store_nothing(
    start_routing: StartRouting,
) -> None:
    """Requests that arrive together are committed together (fewer transactions than
    operations), and still each on its own terms: a repeat within the burst returns the first
    task of the same burst, a refused request refuses only itself."""
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 3})
        await agent(routing, "ana", {"billing": 4}, {"voice": 5})
        before = await metric_samples(routing)
        bodies = [{"queue": "billing", "external_id": f"burst-{n % 20}"} for n in range(40)]
        bodies += [{"queue": "nowhere", "external_id": f"bad-{n}"} for n in range(5)]
        answers = await asyncio.gather(*(post(routing, "/tasks", body) for body in bodies))
        after = await metric_samples(routing)

        assert [a.status_code for a in answers[40:]] == [422] * 5
        ids: dict[str, set[str]] = {}
        replayed = 0
        for body, answer in zip(bodies[:40], answers[:40], strict=True):
            assert answer.status_code == 201, answer.text
            ids.setdefault(body["external_id"], set()).add(answer.json()["id"])
            replayed += answer.headers.get("Idempotent-Replayed") == "true"
        assert all(len(same) == 1 for same in ids.values()) and len(ids) == 20
        assert replayed == 20
        assert await routing.count("routing_tasks") == 20
        offered = [a.json()["id"] for a in answers[:40] if a.json()["state"] == "reserved"]
        assert len(set(offered)) == 5  # ana's capacity, once each

        transactions = after["cxops_routing_commit_operations_count{}"] - before.get(
            "cxops_routing_commit_operations_count{}", 0.0
        )
        operations = after["cxops_routing_commit_operations_sum{}"] - before.get(
            "cxops_routing_commit_operations_sum{}", 0.0
        )
        assert operations == 20  # the repeats and the refusals wrote nothing
        assert transactions < operations


async def test_a_failed_transaction_fails_its_group_and_the_engine_forgets_it(
    start_routing: StartRouting,
) -> None:
    """While the reservations table is missing, every task that would be offered fails with
    the rest of its transaction; afterwards the engine holds none of them (it was rebuilt from
    what was committed) and the same requests succeed, each offered once."""
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 3})
        ana = await agent(routing, "ana", {"billing": 4}, {"voice": 3})
        async with routing.db.engine.begin() as connection:
            await connection.execute(
                sa.text("ALTER TABLE routing_reservations RENAME TO routing_reservations_away")
            )
        try:
            failed = await asyncio.gather(
                *(
                    post(routing, "/tasks", {"queue": "billing", "external_id": f"t-{n}"})
                    for n in range(3)
                ),
                return_exceptions=True,  # the in-process client re-raises the server's error
            )
        finally:
            async with routing.db.engine.begin() as connection:
                await connection.execute(
                    sa.text("ALTER TABLE routing_reservations_away RENAME TO routing_reservations")
                )
        for answer in failed:
            assert isinstance(answer, Exception) or answer.status_code >= 500, answer.text
        assert await routing.count("routing_tasks") == 0

        made = [await task(routing, external_id=f"t-{n}") for n in range(3)]
        assert [m["state"] for m in made] == ["reserved"] * 3
        assert len(await pending_offers(routing, ana["id"])) == 3
        assert await routing.count("routing_tasks") == 3


async def test_offers_time_out_and_tasks_expire(start_routing: StartRouting) -> None:
    async with start_routing(offer_timeout_seconds=0.3, max_consecutive_timeouts=1) as routing:
        await queue(routing, "billing", {"billing": 3})
        ana = await agent(routing, "ana", {"billing": 5})
        bo = await agent(routing, "bo", {"billing": 4})
        first = await task(routing)

        async def moved_to_bo() -> bool:
            offers = await pending_offers(routing, bo["id"])
            return bool(offers) and offers[0]["task_id"] == first["id"]

        await eventually(moved_to_bo, what="the offer to time out and go to bo")
        ana_now = (
            await routing.client.get(f"/v1/routing/agents/{ana['id']}", headers=ADMIN)
        ).json()
        assert ana_now["status"] == "away"  # one offer let lapse is the limit here

        lonely = await post(
            routing,
            "/tasks",
            {"requires": {"billing": 5}, "channel": "voice", "timeout_seconds": 0.3},
        )
        assert lonely.json()["state"] == "pending"  # ana is away

        async def timed_out() -> bool:
            read = await routing.client.get(
                f"/v1/routing/tasks/{lonely.json()['id']}", headers=ADMIN
            )
            return bool(read.json()["state"] == "timed_out")

        await eventually(timed_out, what="the task's time to live to end it")


async def test_a_restart_loses_and_doubles_nothing(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        await queue(
            routing,
            "billing",
            {"billing": 3},
            escalation=[
                {"name": "vip", "when": {"tiers": ["gold"]}, "then": {"raise_priority": 5}}
            ],
        )
        ana = await agent(routing, "ana", {"billing": 5}, channels={"voice": 1})
        bo = await agent(routing, "bo", {"billing": 4}, channels={"voice": 1})
        taken = await task(routing, external_id="a")
        [offer] = await pending_offers(routing, ana["id"])
        await post(routing, f"/reservations/{offer['id']}/accept")
        offered = await task(routing, external_id="b", tier="gold")
        [bo_offer] = await pending_offers(routing, bo["id"])
        waiting = await task(routing, external_id="c")
        escalated = (
            await routing.client.get(f"/v1/routing/tasks/{offered['id']}", headers=ADMIN)
        ).json()
        assert escalated["priority"] == 5 and len(escalated["escalations"]) == 1

    async with start_routing() as routing:
        # The accepted task is still ana's; bo's offer was made again by the new engine.
        kept = (await routing.client.get(f"/v1/routing/tasks/{taken['id']}", headers=ADMIN)).json()
        assert kept["state"] == "assigned" and kept["agent_id"] == ana["id"]
        [renewed] = await pending_offers(routing, bo["id"])
        assert renewed["task_id"] == offered["id"] and renewed["id"] != bo_offer["id"]
        old = await post(routing, f"/reservations/{bo_offer['id']}/accept")
        assert old.status_code == 409 and "rescinded" in old.json()["detail"]
        again = (
            await routing.client.get(f"/v1/routing/tasks/{offered['id']}", headers=ADMIN)
        ).json()
        assert again["priority"] == 5 and len(again["escalations"]) == 1  # not fired twice
        still = (
            await routing.client.get(f"/v1/routing/tasks/{waiting['id']}", headers=ADMIN)
        ).json()
        assert still["state"] == "pending"  # ana is full, bo holds an offer
        assert (await pending_offers(routing, ana["id"])) == []
        done = await post(
            routing, f"/tasks/{taken['id']}/complete", {"handle_seconds": 60, "resolved": False}
        )
        assert done.status_code == 200
        [next_offer] = await pending_offers(routing, ana["id"])
        assert next_offer["task_id"] == waiting["id"]


async def test_a_rebuild_takes_more_live_tasks_than_a_statement_binds(
    start_routing: StartRouting,
) -> None:
    """33,000 waiting tasks are more than one statement may bind (32,767 parameters on
    PostgreSQL; SQLite by default 32,766): the rebuild reads their offers without listing them."""
    async with start_routing() as routing:
        billing = await queue(routing, "billing", {"billing": 3})
        bo = await agent(routing, "bo", {"billing": 4})
        offered = await task(routing, external_id="offered")
        [before] = await pending_offers(routing, bo["id"])
        at = datetime.now(UTC)
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant": TENANT,
                "external_id": f"w-{i}",
                "channel": "voice",
                "queue": "billing",
                "requires": {"billing": 5},
                "optional": {},
                "priority": 0,
                "tier": "standard",
                "attributes": {},
                "state": "pending",
                "fired_rules": [],
                "created_at": at,
            }
            for i in range(33_000)
        ]
        await routing.db.run_transaction(lambda c, _: c.execute(sa.insert(TASKS), rows))

    async with start_routing() as routing:
        [renewed] = await pending_offers(routing, bo["id"])
        assert renewed["task_id"] == offered["id"] and renewed["id"] != before["id"]
        figures = await routing.client.get(
            f"/v1/routing/queues/{billing['id']}/statistics", headers=ADMIN
        )
        assert figures.json()["now"]["waiting"] == 33_001


async def test_a_deleted_agents_work_goes_back_to_the_queue(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 3})
        ana = await agent(routing, "ana", {"billing": 5})
        work = await task(routing)
        [offer] = await pending_offers(routing, ana["id"])
        await post(routing, f"/reservations/{offer['id']}/accept")
        gone = await routing.client.delete(f"/v1/routing/agents/{ana['id']}", headers=ADMIN)
        assert gone.status_code == 204
        back = (await routing.client.get(f"/v1/routing/tasks/{work['id']}", headers=ADMIN)).json()
        assert back["state"] == "pending" and back["agent_id"] is None
        bo = await agent(routing, "bo", {"billing": 3})
        [offer_bo] = await pending_offers(routing, bo["id"])
        assert offer_bo["task_id"] == work["id"]
        assert (
            await routing.client.get(f"/v1/routing/agents/{ana['id']}", headers=ADMIN)
        ).status_code == 404
        await asyncio.sleep(0)


async def test_queue_statistics_by_hand(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        billing = await queue(
            routing,
            "billing",
            {"billing": 3},
            service_level={"answer_within_seconds": 20, "target": 0.8},
        )
        ana = await agent(routing, "ana", {"billing": 5})
        await agent(routing, "bo", {"billing": 2})  # not eligible: below the requirement
        answered = await task(routing, priority=1)
        [offer] = await pending_offers(routing, ana["id"])
        await post(routing, f"/reservations/{offer['id']}/accept")
        left = await task(routing, priority=3)
        await task(routing, priority=3)
        await post(routing, f"/tasks/{left['id']}/cancel", {"reason": "abandoned"})
        await post(
            routing, f"/tasks/{answered['id']}/complete", {"handle_seconds": 30, "resolved": True}
        )

        figures = (
            await routing.client.get(
                f"/v1/routing/queues/{billing['id']}/statistics", headers=ADMIN
            )
        ).json()
        now, window = figures["now"], figures["window"]
        # One task left: offered to ana when she completed, the customer still waits.
        assert now["waiting"] == 1 and now["waiting_by_priority"] == {"3": 1}
        assert now["longest_waiting_seconds"] >= 0
        assert now["eligible_agents_by_status"] == {"busy": 1}
        assert window["entered"] == 3 and window["answered"] == 1
        assert window["abandoned"] == 1 and window["waiting"] == 1  # reserved counts as waiting
        assert window["service_level"] == 0.5 and window["meets_target"] is False
        assert window["reservations"]["accepted"] == 1
        assert window["average_speed_of_answer_seconds"] < 20
        recent = (
            await routing.client.get(
                f"/v1/routing/queues/{billing['id']}/statistics?minutes=15", headers=ADMIN
            )
        ).json()
        assert recent["window"]["entered"] == 3
        assert (
            await routing.client.get(f"/v1/routing/queues/{uuid.uuid4()}/statistics", headers=ADMIN)
        ).status_code == 404


async def test_a_supervisor_changes_skills_and_channels(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 4})
        ana = await agent(routing, "ana", {"billing": 3, "sales": 2}, channels={"voice": 1})
        waiting = await task(routing)
        assert waiting["state"] == "pending"  # ana is below the requirement

        path = f"/v1/routing/agents/{ana['id']}"
        raised = await routing.client.patch(
            path, headers=ADMIN, json={"skills": {"billing": 4, "sales": None}}
        )
        assert raised.status_code == 200, raised.text
        assert raised.json()["skills"] == {"billing": 4}
        assert raised.json()["pinned_skills"] == ["billing"]  # learning leaves it alone
        [offer] = await pending_offers(routing, ana["id"])  # now eligible, offered at once
        assert offer["task_id"] == waiting["id"]

        below = await routing.client.patch(path, headers=ADMIN, json={"channels": {"voice": None}})
        assert below.status_code == 409
        assert below.json()["errors"][0]["field"] == "channels.voice"
        wider = await routing.client.patch(
            path, headers=ADMIN, json={"channels": {"voice": 2, "chat": 1}}
        )
        assert wider.json()["channels"] == {"voice": 2, "chat": 1}
        assert wider.json()["load"] == {"voice": 1, "chat": 0}
        # Billing raised and sales removed, each recorded (ana is the only agent).
        assert await routing.count("routing_proficiency_changes") == 2


async def test_list_filters_refuse_what_no_name_can_be(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        for query in ("queue=%00x", "customer_ref=a%0Ab", "state=lost"):
            listed = await routing.client.get(f"/v1/routing/tasks?{query}", headers=ADMIN)
            assert listed.status_code == 422, (query, listed.text)
        assert (
            await routing.client.get("/v1/routing/agents?team=%01", headers=ADMIN)
        ).status_code == 422


async def test_a_deleted_agents_external_id_can_be_registered_again(
    start_routing: StartRouting,
) -> None:
    async with start_routing() as routing:
        first = await agent(routing, "ana", {"billing": 3})
        assert (
            await routing.client.delete(f"/v1/routing/agents/{first['id']}", headers=ADMIN)
        ).status_code == 204
        again = await agent(routing, "ana", {"billing": 4})
        assert again["id"] != first["id"] and again["skills"] == {"billing": 4}
        twice = await post(
            routing, "/agents", {"external_id": "ana", "name": "Ana", "channels": {"voice": 1}}
        )
        assert twice.status_code == 409


async def test_a_queue_is_sized_from_its_history(start_routing: StartRouting) -> None:
    async with start_routing() as routing:
        await queue(
            routing,
            "billing",
            {"billing": 3},
            service_level={"answer_within_seconds": 20, "target": 0.8},
        )
        ana = await agent(routing, "ana", {"billing": 4}, channels={"voice": 3})
        for n in range(3):
            made = await task(routing, external_id=f"h-{n}")
            [offer] = [
                o for o in await pending_offers(routing, ana["id"]) if o["task_id"] == made["id"]
            ]
            await post(routing, f"/reservations/{offer['id']}/accept")
            await post(
                routing,
                f"/tasks/{made['id']}/complete",
                {"handle_seconds": 100 + 100 * n, "resolved": True},
            )
        await task(routing, external_id="h-open")  # arrived, not completed: volume, no handle

        # One two-hour interval from the hour of the first task: all four are in it.
        oldest = (
            await routing.client.get("/v1/routing/tasks?limit=10&queue=billing", headers=ADMIN)
        ).json()[-1]["created_at"]
        hour = datetime.fromisoformat(oldest).replace(minute=0, second=0, microsecond=0)
        body = {
            "queue": "billing",
            "from": hour.isoformat(),
            "to": (hour + timedelta(hours=2)).isoformat(),
            "interval_minutes": 120,
        }
        sized = await post(routing, "/staffing/from-history", body)
        assert sized.status_code == 200, sized.text
        [interval] = sized.json()["intervals"]
        assert interval["volume"] == 4 and interval["aht_seconds"] == 200.0  # mean of 100..300
        direct = await post(
            routing,
            "/staffing/plan",
            {
                "intervals": [{"interval_start": body["from"], "volume": 4}],
                "interval_minutes": 120,
                "aht_seconds": 200.0,
                "target_seconds": 20,
                "service_level": 0.8,
            },
        )
        assert sized.json() == direct.json()  # the same plan as given by hand

        empty = await post(
            routing,
            "/staffing/from-history",
            {**body, "from": "2020-01-01T00:00:00Z", "to": "2020-01-01T01:00:00Z"},
        )
        assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "from"
        backwards = await post(routing, "/staffing/from-history", {**body, "to": body["from"]})
        assert backwards.json()["errors"][0]["field"] == "to"
        unknown = await post(routing, "/staffing/from-history", {**body, "queue": "nope"})
        assert unknown.status_code == 404


async def metric_samples(service: RunningService) -> dict[str, float]:
    """The service's ``/metrics`` as {sample name with its labels: value}."""
    response = await service.client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def test_metrics_time_the_engine_apart_from_the_database(
    start_routing: StartRouting,
) -> None:
    """A task that is offered at once: one offer counted, and its operation timed in memory
    (``engine``), in its lookup of an earlier task (``read``) and in its transaction
    (``write``)."""
    async with start_routing() as routing:
        await queue(routing, "billing", {"billing": 3})
        await agent(routing, "ana", {"billing": 4})
        before = await metric_samples(routing)
        made = await task(routing, external_id="call-1")
        assert made["state"] == "reserved"
        after = await metric_samples(routing)

        def grew(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        assert grew("cxops_routing_offers_total{}") == 1
        for phase in ("engine", "read", "write"):
            assert grew(f"cxops_routing_operation_seconds_count{{phase={phase}}}") >= 1
            assert grew(f"cxops_routing_operation_seconds_sum{{phase={phase}}}") > 0


async def test_an_answer_after_the_offers_deadline_is_a_conflict(
    start_routing: StartRouting,
) -> None:
    """An answer that comes after the offer's deadline but before the timer has run (stopped
    here, so that it surely comes first) is a 409 saying it timed out, never an error, and the
    offer moves on."""
    async with start_routing(offer_timeout_seconds=0.2) as routing:
        await queue(routing, "billing", {"billing": 3})
        board = routing.state.component(Switchboard)
        board._timers[TENANT].cancel()
        ana = await agent(routing, "ana", {"billing": 5})
        bo = await agent(routing, "bo", {"billing": 4})
        for n in range(5):
            work = await task(routing, external_id=f"late-{n}")
            offers = [
                o
                for o in await pending_offers(routing, ana["id"])
                + await pending_offers(routing, bo["id"])
                if o["task_id"] == work["id"]
            ]
            if not offers:
                continue
            await asyncio.sleep(0.25)  # past the deadline; no timer has run
            late = await post(routing, f"/reservations/{offers[0]['id']}/accept")
            assert late.status_code == 409, late.text
            assert "timed out" in late.json()["detail"]
            await post(routing, f"/tasks/{work['id']}/cancel")
            for person in (ana, bo):
                await routing.client.put(
                    f"/v1/routing/agents/{person['id']}/status",
                    headers=ADMIN,
                    json={"status": "available"},
                )
