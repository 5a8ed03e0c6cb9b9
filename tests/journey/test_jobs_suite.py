"""A mining job through the gateway on the embedded suite, whose nats-server refuses anything
a component's permissions do not allow: journey's user may provision its work queue, publish
its work items and take them, and the result is the command's output."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxops.cli.main import app as cli
from cxops.cli.nats_auth import suite_permissions
from cxops.cli.supervisor import Suite
from cxops.common.events.permissions import service_permissions
from cxops.journey.jobs import JOB_QUEUE
from tests.journey.mining_logs import HAND_LOG
from tests.support.flow import client_for
from tests.support.services import eventually
from tests.support.suite import SuiteFactory


@pytest.fixture(scope="module")
def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """One embedded suite (SQLite: the jobs' database runs on both in test_jobs.py)."""
    factory = SuiteFactory(
        tmp_path_factory.mktemp("suite"), lambda: request.getfixturevalue("postgres_server")
    )
    try:
        yield factory.start(database="sqlite")
    finally:
        factory.close()


async def test_a_mining_job_through_the_gateway_under_nats_permissions(
    suite: Suite, tmp_path: Path
) -> None:
    key = suite.create_api_key(tenant="acme", role="ops_lead", name="miner")
    async with client_for(suite, key) as client:
        uploaded = await client.post(
            "/v1/journey/event-logs",
            content=HAND_LOG.encode(),
            headers={"content-type": "text/csv"},
        )
        assert uploaded.status_code == 201, uploaded.text
        created = await client.post(
            "/v1/journey/mining-jobs", json={"source": {"event_log": uploaded.json()["id"]}}
        )
        assert created.status_code == 202, created.text
        location = created.headers["location"]

        async def finished() -> dict[str, object] | None:
            job: dict[str, object] = (await client.get(location)).json()
            return job if job["state"] in ("succeeded", "failed", "canceled") else None

        job = await eventually(finished, what="the job to finish", within=60)
        result = await client.get(f"{location}/result")

    path = tmp_path / "hand.csv"
    path.write_text(HAND_LOG)
    printed = CliRunner().invoke(cli, ["journey", "mine", str(path), "--json"])
    assert job["state"] == "succeeded", job
    assert result.text == printed.stdout.rstrip("\n")
    assert json.loads(result.text)["cases"] == 3


def test_only_journey_may_use_its_job_queue() -> None:
    journey = suite_permissions()["journey"]
    others = [p for name, p in suite_permissions().items() if name != "journey"]

    assert {"jobs.journey.>", "$JS.ACK.CX_JOURNEY_JOBS.journey-jobs.>"} <= set(journey.publish)
    assert not any(
        "CX_JOURNEY_JOBS" in s or s.startswith("jobs.") for p in others for s in p.publish
    )
    with pytest.raises(ValueError, match="work queues named for it"):
        service_permissions("feedback", [], work_queues=[JOB_QUEUE])
