"""NATS is not open (issue 12, defect 5): the embedded suite's nats-server refuses anonymous
clients, and each component may publish only its own subjects and touch only its own streams.

The defect: a forged ``cx.feedback.response.received.v1`` carrying another tenant's
``ce-tenant``, published by anyone who could reach the broker, was counted by the scorecard
while feedback held no such response.
"""

import asyncio
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import NoServersError
from nats.js.api import ConsumerConfig, StreamConfig

from cxops.cli.nats_auth import SEED_DIR, public_key, seed_file
from cxops.cli.supervisor import Suite
from cxops.common.components import COMPONENTS
from tests.support.flow import client_for, wait_for_responses
from tests.support.suite import SuiteFactory

FORGED_SUBJECT = "cx.feedback.response.received.v1"
#: How long a request the server silently refuses (a permissions violation) is waited for.
REFUSED_WITHIN = 1.0


@pytest.fixture(scope="module")
def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """One embedded suite (SQLite: the database plays no part in who may publish)."""
    factory = SuiteFactory(
        tmp_path_factory.mktemp("suite"), request.getfixturevalue("postgres_server")
    )
    try:
        yield factory.start()
    finally:
        factory.close()


def forged_response(tenant: str) -> tuple[bytes, dict[str, str]]:
    """A well-formed response-received event for ``tenant`` that feedback never published."""
    event_id = str(uuid.uuid4())
    body = {
        "response_id": str(uuid.uuid4()),
        "kind": "nps",
        "score": 0,
        "customer_ref": "forged",
        "channel": "email",
        "occurred_at": "2026-11-25T10:00:00+00:00",
        "received_at": "2026-11-25T10:00:00+00:00",
        "has_comment": False,
    }
    headers = {
        "ce-id": event_id,
        "ce-source": "/cxops/feedback",
        "ce-specversion": "1.0",
        "ce-type": FORGED_SUBJECT,
        "ce-time": "2026-11-25T10:00:00+00:00",
        "ce-tenant": tenant,
        "Nats-Msg-Id": event_id,
    }
    return json.dumps(body).encode(), headers


@asynccontextmanager
async def connected_as(suite: Suite, component: str) -> AsyncIterator[tuple[NatsClient, list[str]]]:
    """A connection with ``component``'s credentials, and the errors the server sends it."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    client = await nats.connect(**suite.nats_options(component), error_cb=on_error)
    try:
        yield client, errors
    finally:
        await client.close()


async def refused(request: Awaitable[Any], errors: list[str], subject: str) -> None:
    """The server refused the request: no answer came, and it said why."""
    with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
        await request
    for _ in range(50):
        said = f'permissions violation for publish to "{subject.lower()}"'
        if any(said in error.lower() for error in errors):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no permissions violation for {subject}; errors: {errors}")


async def stream_messages(suite: Suite, stream: str) -> int:
    async with connected_as(suite, "gateway") as (client, _errors):
        info = await client.jetstream(timeout=5).stream_info(stream)
    return info.state.messages


def test_seeds_are_generated_once_private_and_kept(suite: Suite) -> None:
    seeds = suite.var_dir / SEED_DIR
    assert stat.S_IMODE(os.stat(seeds).st_mode) == 0o700
    kept = {}
    for component in COMPONENTS:
        path = seed_file(seeds, component)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert path.read_text().startswith("SU")
        kept[component] = path.read_text()
    config = (suite.var_dir / "nats.conf").read_text()
    for seed in kept.values():  # public keys only, never a seed
        assert public_key(seed.strip().encode()) in config and seed.strip() not in config
    suite.write_nats_config()  # what a restart does
    assert {c: seed_file(seeds, c).read_text() for c in COMPONENTS} == kept


async def test_anonymous_clients_are_refused(suite: Suite) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)) as refusal:
        await nats.connect(suite.nats_url, connect_timeout=2, allow_reconnect=False)
    assert "authorization" in repr(refusal.value).lower() or isinstance(
        refusal.value, NoServersError
    )


async def test_a_forged_event_is_refused_and_the_scorecard_counts_nothing(suite: Suite) -> None:
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    before = await stream_messages(suite, "CX_FEEDBACK")
    body, headers = forged_response(victim)
    for impostor in ("routing", "scorecard", "journey", "gateway"):
        async with connected_as(suite, impostor) as (client, errors):
            js = client.jetstream(timeout=REFUSED_WITHIN)
            await refused(js.publish(FORGED_SUBJECT, body, headers=headers), errors, FORGED_SUBJECT)
            await client.publish(FORGED_SUBJECT, body, headers=headers)  # core NATS: dropped
            await client.flush()
    assert await stream_messages(suite, "CX_FEEDBACK") == before

    # What feedback publishes itself is counted, and only that: the stream is read in order,
    # so once the real response is counted, a forged one ahead of it would have been too.
    key = suite.create_api_key(tenant=victim, role="integration", name="real")
    async with client_for(suite, key) as http:
        posted = await http.post(
            "/v1/feedback/responses",
            json={"kind": "nps", "score": 10, "customer_ref": "real", "channel": "email"},
        )
        assert posted.status_code == 201
        await wait_for_responses(http, 1, timeout=30)
        nps = (await http.get("/v1/scorecard/metrics/nps")).json()
    assert nps["responses"] == 1 and nps["value"] == 100.0


async def test_a_component_cannot_touch_another_components_stream(suite: Suite) -> None:
    async with connected_as(suite, "routing") as (client, errors):
        js = client.jetstream(timeout=REFUSED_WITHIN)
        api = "$JS.API"
        await refused(js.delete_stream("CX_FEEDBACK"), errors, f"{api}.STREAM.DELETE.CX_FEEDBACK")
        await refused(js.purge_stream("CX_FEEDBACK"), errors, f"{api}.STREAM.PURGE.CX_FEEDBACK")
        await refused(
            js.delete_msg("CX_FEEDBACK", 1), errors, f"{api}.STREAM.MSG.DELETE.CX_FEEDBACK"
        )
        await refused(
            js.update_stream(StreamConfig(name="CX_FEEDBACK", subjects=["cx.routing.x"])),
            errors,
            f"{api}.STREAM.UPDATE.CX_FEEDBACK",
        )
        await refused(js.delete_stream("CX_ROUTING"), errors, f"{api}.STREAM.DELETE.CX_ROUTING")
        # Moving the scorecard's durable consumer (another filter would skip its events).
        hijack = ConsumerConfig(durable_name="scorecard-feedback-responses", filter_subject="x")
        await refused(
            js.add_consumer("CX_FEEDBACK", config=hijack),
            errors,
            f"{api}.CONSUMER.DURABLE.CREATE.CX_FEEDBACK.scorecard-feedback-responses",
        )
        # Listening in on NATS directly, or on another component's replies.
        await client.subscribe("cx.>")
        await client.subscribe("_INBOX.cxops-scorecard.>")
        await client.flush()
        for _ in range(50):
            if sum("subscription" in e.lower() for e in errors) >= 2:
                break
            await asyncio.sleep(0.02)
        assert sum("permissions violation for subscription" in e.lower() for e in errors) == 2

    async with connected_as(suite, "gateway") as (client, errors):
        js = client.jetstream(timeout=REFUSED_WITHIN)
        await refused(js.delete_stream("CX_FEEDBACK"), errors, "$JS.API.STREAM.DELETE.CX_FEEDBACK")
        await refused(
            js.delete_consumer("CX_FEEDBACK", "scorecard-feedback-responses"),
            errors,
            "$JS.API.CONSUMER.DELETE.CX_FEEDBACK.scorecard-feedback-responses",
        )
        # The gateway reads every stream with consumers of its own.
        reader = await client.jetstream(timeout=5).pull_subscribe(
            "cx.feedback.>", stream="CX_FEEDBACK"
        )
        assert await reader.fetch(1, timeout=5)

    assert await stream_messages(suite, "CX_FEEDBACK") > 0
