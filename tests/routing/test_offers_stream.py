"""An agent desktop's live offers through the gateway, on the running suite: the offer arrives
on the agent's stream the moment it is made, with the task's attributes; only the agent's own
key opens it; a reconnect with ``Last-Event-ID`` gets what is still pending after it; and an
agent whose stream stays dropped past the grace period goes offline, its offer rescinded."""

import asyncio
from typing import Any

import httpx
import pytest

from cxops.cli.supervisor import Suite
from tests.support.services import eventually
from tests.support.sse import open_stream
from tests.support.suite import SuiteFactory

pytestmark = pytest.mark.slow

GRACE = {"CXOPS_ROUTING_STREAM_GRACE_SECONDS": "1"}


async def desktop(suite: Suite) -> tuple[httpx.AsyncClient, dict[str, str], str, dict[str, str]]:
    """A supervisor's client, and an agent registered with a key bound to it."""
    admin = {
        "Authorization": f"Bearer {suite.create_api_key(tenant='desk', role='admin', name='a')}"
    }
    client = httpx.AsyncClient(base_url=suite.gateway_url, timeout=30, trust_env=False)
    queue = await client.post(
        "/v1/routing/queues",
        headers=admin,
        json={"name": "billing", "channel": "chat", "requires": {"billing": 2}},
    )
    assert queue.status_code == 201, queue.text
    agent = await client.post(
        "/v1/routing/agents",
        headers=admin,
        json={
            "external_id": "ana",
            "name": "Ana",
            "skills": {"billing": 4},
            "channels": {"chat": 2},
            "status": "available",
        },
    )
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    key = await client.post(
        "/v1/keys",
        headers=admin,
        json={"name": "ana's desktop", "role": "agent", "agent_id": agent_id},
    )
    assert key.status_code == 201, key.text
    return client, admin, agent_id, {"Authorization": f"Bearer {key.json()['key']}"}


async def new_task(client: httpx.AsyncClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    made = await client.post("/v1/routing/tasks", headers=admin, json={"queue": "billing", **body})
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_offers_reach_the_agents_stream(suite_factory: SuiteFactory) -> None:
    suite = await asyncio.to_thread(suite_factory.start, env=GRACE)
    client, admin, agent_id, ana = await desktop(suite)
    path = f"/v1/routing/agents/{agent_id}/offers"
    try:
        async with open_stream(client, ana, path=path) as stream:
            task = await new_task(
                client,
                admin,
                customer_ref="cust-7",
                attributes={"sentiment": -0.4, "order": "A-17"},
            )
            [offer] = await stream.events(1)
            assert offer.event == "offer"
            assert offer.data["task"]["id"] == task["id"]
            assert offer.data["task"]["attributes"] == {"sentiment": -0.4, "order": "A-17"}
            assert offer.data["reservation"]["agent_id"] == agent_id
            assert offer.id == offer.data["reservation"]["id"]
            accepted = await client.post(f"/v1/routing/reservations/{offer.id}/accept", headers=ana)
            assert accepted.status_code == 200, accepted.text

            second = await new_task(client, admin)
            [next_offer] = await stream.events(1)
            assert next_offer.data["task"]["id"] == second["id"]

        # Reconnecting after the first offer: what is still pending after it comes first.
        async with open_stream(client, ana, path=path, last_event_id=offer.id) as again:
            [pending] = await again.events(1)
            assert pending.id == next_offer.id

        # Dropped for longer than the grace: offline, and the pending offer is rescinded.
        async def offline() -> bool:
            read = await client.get(f"/v1/routing/agents/{agent_id}", headers=admin)
            return bool(read.json()["status"] == "offline")

        await eventually(offline, what="the agent to go offline after the grace period")
        gone = await client.post(f"/v1/routing/reservations/{next_offer.id}/accept", headers=ana)
        assert gone.status_code == 409 and "rescinded" in gone.json()["detail"]

        other = await client.post(
            "/v1/keys",
            headers=admin,
            json={
                "name": "someone else",
                "role": "agent",
                "agent_id": "00000000-0000-7000-8000-000000000000",
            },
        )
        intruder = {"Authorization": f"Bearer {other.json()['key']}"}
        assert (await client.get(path, headers=intruder)).status_code == 403
    finally:
        await client.aclose()
