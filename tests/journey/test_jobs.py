"""Event-log uploads and mining and simulation jobs through the journey service, on both
databases with a real NATS: the job's result is the command's ``--json`` output for the same
input, from an uploaded log and from the stored interactions; bad and oversized uploads keep
nothing; cancellation; the completion events; and another tenant sees nothing."""

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from typer.testing import CliRunner

from cxops.cli.main import app as cli
from cxops.common.auth import Role
from cxops.journey.models import Interaction, JourneyMapVersion
from tests.journey.conftest import JourneySettingsFor, StartJourney
from tests.journey.mining_logs import HAND_LOG
from tests.support.services import RunningService, auth, eventually

ACME = auth("acme", Role.OPS_LEAD)
GLOBEX = auth("globex", Role.OPS_LEAD)
EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "examples" / "journey-model.json"
MAP = {
    "name": "billing dispute",
    "stages": [
        {"name": "intake", "activities": ["open", "triage"]},
        {"name": "billing", "activities": ["bill"], "optional": True},
        {"name": "closure", "activities": ["close"]},
    ],
    "handoffs": [{"from": "intake", "to": "billing", "sla_seconds": 3000}],
}


@pytest.fixture
def journey_settings(journey_settings: JourneySettingsFor, tmp_path: Path) -> JourneySettingsFor:
    """Every journey service of these tests keeps its jobs' files in the test's directory, and
    a lost worker's job is taken up again within seconds."""
    return partial(
        journey_settings,
        data_dir=tmp_path / "journey",
        job_heartbeat_seconds=0.2,
        job_ack_wait_seconds=2.0,
    )


def command_json(*args: str, stdin: str | None = None) -> str:
    """What ``cxops journey ...`` prints, without the final line break."""
    result = CliRunner().invoke(cli, ["journey", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout.rstrip("\n")


async def upload(
    journey: RunningService,
    body: bytes,
    *,
    headers: dict[str, str] = ACME,
    content_type: str = "text/csv",
    **params: str,
) -> Any:
    return await journey.client.post(
        "/v1/journey/event-logs",
        content=body,
        params=params,
        headers={**headers, "content-type": content_type},
    )


async def finished(journey: RunningService, location: str, *, within: float = 30) -> Any:
    async def done() -> Any:
        job = (await journey.client.get(location, headers=ACME)).json()
        return job if job["state"] in ("succeeded", "failed", "canceled") else None

    return await eventually(done, what=f"{location} to finish", within=within)


async def test_a_mining_job_on_an_uploaded_log_answers_what_the_command_prints(
    journey: RunningService, tmp_path: Path
) -> None:
    uploaded = await upload(journey, HAND_LOG.encode(), filename="hand.csv")
    assert uploaded.status_code == 201, uploaded.text
    log = uploaded.json()
    assert log["columns"] == {
        "case": "case_id",
        "activity": "activity",
        "timestamp": "timestamp",
        "team": "team",
        "channel": "channel",
    }
    assert log["size"] == len(HAND_LOG.encode())
    assert uploaded.headers["location"] == f"/v1/journey/event-logs/{log['id']}"
    assert (await journey.client.get(uploaded.headers["location"], headers=ACME)).json() == log
    listed = (await journey.client.get("/v1/journey/event-logs", headers=ACME)).json()
    assert listed["items"] == [log]

    created = await journey.client.post(
        "/v1/journey/mining-jobs", json={"source": {"event_log": log["id"]}}, headers=ACME
    )
    assert created.status_code == 202, created.text
    location = created.headers["location"]
    assert location == f"/v1/journey/mining-jobs/{created.json()['id']}"
    assert created.json()["state"] == "queued"
    job = await finished(journey, location)
    result = await journey.client.get(f"{location}/result", headers=ACME)

    path = tmp_path / "hand.csv"
    path.write_text(HAND_LOG)
    assert job["state"] == "succeeded", job
    assert (job["progress"], job["cases"], job["events"], job["attempts"]) == (1.0, 3, 12, 1)
    assert result.headers["content-type"] == "application/json"
    assert result.text == command_json("mine", str(path), "--json")


async def test_the_completion_is_published(
    journey: RunningService, nats_client: NatsClient
) -> None:
    log = (await upload(journey, HAND_LOG.encode())).json()
    created = await journey.client.post(
        "/v1/journey/mining-jobs", json={"source": {"event_log": log["id"]}}, headers=ACME
    )
    job = await finished(journey, created.headers["location"])
    subscription = await nats_client.jetstream().pull_subscribe(
        "cx.journey.mining_job.completed.v1", durable="test-completed", stream="CX_JOURNEY"
    )
    message = (await subscription.fetch(1, timeout=10))[0]
    payload = json.loads(message.data)

    assert message.headers is not None and message.headers["ce-tenant"] == "acme"
    assert payload["job_id"] == job["id"]
    assert (payload["state"], payload["source_kind"]) == ("succeeded", "event_log")
    assert (payload["cases"], payload["events"]) == (3, 12)
    assert payload["seconds"] >= 0


async def test_a_map_is_the_latest_version_of_the_tenants_map(
    journey: RunningService, tmp_path: Path
) -> None:
    async with journey.db.transaction() as session:
        for version, body in ((1, {"stages": [{"name": "all", "activities": ["open"]}]}), (2, MAP)):
            session.add(
                JourneyMapVersion(
                    tenant="acme",
                    key="billing",
                    version=version,
                    body=body,
                    by="test",
                    created_at=datetime.now(UTC),
                )
            )
    log = (await upload(journey, HAND_LOG.encode())).json()

    absent = await journey.client.post(
        "/v1/journey/mining-jobs",
        json={"source": {"event_log": log["id"]}, "map": "nope"},
        headers=ACME,
    )
    other_tenant = await journey.client.post(
        "/v1/journey/mining-jobs",
        json={"source": {"event_log": log["id"]}, "map": "billing"},
        headers=GLOBEX,
    )
    created = await journey.client.post(
        "/v1/journey/mining-jobs",
        json={"source": {"event_log": log["id"]}, "map": "billing"},
        headers=ACME,
    )
    job = await finished(journey, created.headers["location"])
    result = await journey.client.get(f"{created.headers['location']}/result", headers=ACME)
    (tmp_path / "hand.csv").write_text(HAND_LOG)
    (tmp_path / "map.json").write_text(json.dumps(MAP))

    assert absent.status_code == 422
    assert [e["field"] for e in absent.json()["errors"]] == ["map"]
    assert other_tenant.status_code == 422
    assert job["request"]["map_version"] == 2
    assert result.text == command_json(
        "mine", str(tmp_path / "hand.csv"), "--map", str(tmp_path / "map.json"), "--json"
    )
    assert json.loads(result.text)["conformance"] is not None
    assert await journey.count("journey_jobs") == 1


async def test_a_mining_job_over_the_stored_interactions(
    journey: RunningService, tmp_path: Path
) -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    rows = [
        # (tenant, customer, activity, minutes after start, team, channel)
        ("acme", "cust-a", "open", 0, "front", "phone"),
        ("acme", "cust-a", "bill", 30, "billing", "email"),
        ("acme", "cust-a", "close", 90, "front", "phone"),
        ("acme", "cust-b", "open", 5, "front", "chat"),
        ("acme", "cust-b", "close", 50, "front", "chat"),
        ("acme", "cust-c", "open", 10, "front", "web"),  # filtered out: channel
        ("acme", None, "open", 15, "front", "phone"),  # not resolved to a customer yet
        ("acme", "cust-a", "open", 60 * 24 * 3, "front", "phone"),  # after 'to'
        ("globex", "cust-g", "open", 0, "front", "phone"),  # another tenant's
    ]
    async with journey.db.transaction() as session:
        for index, (tenant, customer, activity, minutes, team, channel) in enumerate(rows):
            at = start + timedelta(minutes=minutes)
            session.add(
                Interaction(
                    tenant=tenant,
                    external_id=f"x-{index}",
                    occurred_at=at,
                    received_at=at,
                    channel=channel,
                    activity=activity,
                    team=team,
                    identifiers={"crm_id": customer or "?"},
                    attributes={},
                    customer_id=customer,
                )
            )
    created = await journey.client.post(
        "/v1/journey/mining-jobs",
        json={
            "source": {
                "interactions": {
                    "from": "2026-03-01T00:00:00Z",
                    "to": "2026-03-02T00:00:00Z",
                    "filter": {"channel": ["phone", "email", "chat"]},
                }
            }
        },
        headers=ACME,
    )
    job = await finished(journey, created.headers["location"])
    result = await journey.client.get(f"{created.headers['location']}/result", headers=ACME)
    kept = [row for row in rows[:5]]
    (tmp_path / "same.csv").write_text(
        "case_id,activity,timestamp,team,channel\n"
        + "".join(
            f"{c},{a},{(start + timedelta(minutes=m)).isoformat()},{t},{ch}\n"
            for _tenant, c, a, m, t, ch in kept
        )
    )

    assert job["state"] == "succeeded", job
    assert (job["source_kind"], job["cases"], job["events"]) == ("interactions", 2, 5)
    assert result.text == command_json("mine", str(tmp_path / "same.csv"), "--json")


async def test_an_upload_missing_a_mapped_column_is_refused_and_nothing_kept(
    journey: RunningService, tmp_path: Path
) -> None:
    missing = await upload(journey, HAND_LOG.encode(), case="ticket")
    missing_team = await upload(journey, HAND_LOG.encode(), team="owner")
    no_format = await upload(journey, HAND_LOG.encode(), content_type="application/octet-stream")
    not_a_parquet = await upload(
        journey, HAND_LOG.encode(), content_type="application/vnd.apache.parquet"
    )
    unsupported = await upload(journey, HAND_LOG.encode(), content_type="application/json")

    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in missing.json()["errors"]] == ["case"]
    assert "'ticket'" in missing.json()["errors"][0]["message"]
    assert [e["field"] for e in missing_team.json()["errors"]] == ["team"]
    assert [e["field"] for e in no_format.json()["errors"]] == ["format"]
    assert not_a_parquet.status_code == 422
    assert unsupported.status_code == 415
    assert await journey.count("journey_event_logs") == 0
    assert list((tmp_path / "journey").rglob("*.*")) == []


async def test_a_parquet_log_as_octet_stream(journey: RunningService, tmp_path: Path) -> None:
    import polars as pl

    path = tmp_path / "hand.parquet"
    pl.read_csv(HAND_LOG.encode(), infer_schema=False).write_parquet(path)
    uploaded = await upload(
        journey,
        path.read_bytes(),
        content_type="application/octet-stream",
        format="parquet",
    )
    assert uploaded.status_code == 201, uploaded.text
    created = await journey.client.post(
        "/v1/journey/mining-jobs",
        json={"source": {"event_log": uploaded.json()["id"]}},
        headers=ACME,
    )
    await finished(journey, created.headers["location"])
    result = await journey.client.get(f"{created.headers['location']}/result", headers=ACME)

    assert uploaded.json()["format"] == "parquet"
    assert result.text == command_json("mine", str(path), "--json")


async def test_a_log_over_the_limit_is_refused_with_413_and_nothing_kept(
    start_journey: StartJourney, tmp_path: Path
) -> None:
    async with start_journey(event_log_max_bytes=100) as journey:
        declared = await upload(journey, HAND_LOG.encode())

        async def undeclared_chunks() -> AsyncIterator[bytes]:
            for line in HAND_LOG.encode().splitlines(keepends=True):
                yield line

        streamed = await journey.client.post(
            "/v1/journey/event-logs",
            content=undeclared_chunks(),
            headers={**ACME, "content-type": "text/csv"},
        )
        under = await upload(journey, HAND_LOG.encode()[:100])

        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert streamed.status_code == 413
        assert under.status_code == 201
        assert await journey.count("journey_event_logs") == 1
        assert len(list((tmp_path / "journey").rglob("*.*"))) == 1


def slow_model(hours: float = 2000) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(EXAMPLE_MODEL.read_text())
    model["hours"] = hours
    model.pop("intervention", None)
    return model


async def test_a_simulation_job_answers_what_the_command_prints(
    journey: RunningService,
) -> None:
    model = slow_model(hours=2)
    created = await journey.client.post(
        "/v1/journey/simulation-jobs",
        json={"model": model, "seed": 3, "replications": 2},
        headers=ACME,
    )
    assert created.status_code == 202, created.text
    location = created.headers["location"]
    early = await journey.client.get(f"{location}/result", headers=ACME)
    job = await finished(journey, location)
    result = await journey.client.get(f"{location}/result", headers=ACME)

    assert early.status_code in (200, 409)
    assert job["state"] == "succeeded", job
    assert result.text == command_json(
        "simulate", "-", "--seed", "3", "--replications", "2", "--json", stdin=json.dumps(model)
    )


async def test_a_bad_model_is_refused_naming_its_place(journey: RunningService) -> None:
    model = slow_model()
    model["stages"][0]["servers"] = 0
    refused = await journey.client.post(
        "/v1/journey/simulation-jobs", json={"model": model}, headers=ACME
    )

    assert refused.status_code == 422
    fields = [e["field"] for e in refused.json()["errors"]]
    assert fields[0] == "model"
    assert "model.stages[0].servers" in fields
    assert await journey.count("journey_jobs") == 0


async def test_cancel_a_running_and_a_queued_job(journey: RunningService) -> None:
    first = await journey.client.post(
        "/v1/journey/simulation-jobs", json={"model": slow_model()}, headers=ACME
    )
    second = await journey.client.post(
        "/v1/journey/simulation-jobs", json={"model": slow_model()}, headers=ACME
    )
    running_location, queued_location = first.headers["location"], second.headers["location"]

    async def is_running() -> bool:
        job = (await journey.client.get(running_location, headers=ACME)).json()
        return bool(job["state"] == "running")

    await eventually(is_running, what="the first job to run", within=20)
    queued = await journey.client.post(f"{queued_location}/cancel", headers=ACME)
    canceled = await journey.client.post(f"{running_location}/cancel", headers=ACME)
    again = await journey.client.post(f"{running_location}/cancel", headers=ACME)
    result = await journey.client.get(f"{running_location}/result", headers=ACME)

    assert queued.status_code == 200
    assert queued.json()["state"] == "canceled"
    assert queued.json()["attempts"] == 0
    assert canceled.json()["state"] == "canceled"
    assert again.status_code == 409
    assert result.status_code == 409
    # The worker stops the run at its next check, and goes on to nothing: the queued one stays
    # canceled when its item comes up.

    async def worker_idle() -> bool:
        info = await journey.state.broker.js.consumer_info("CX_JOURNEY_JOBS", "journey-jobs")
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(worker_idle, what="the work queue to empty", within=20)
    for location in (running_location, queued_location):
        job = (await journey.client.get(location, headers=ACME)).json()
        assert job["state"] == "canceled"
    assert await journey.count("journey_job_results") == 0


async def test_another_tenants_logs_and_jobs_are_not_found(journey: RunningService) -> None:
    log = (await upload(journey, HAND_LOG.encode())).json()
    created = await journey.client.post(
        "/v1/journey/mining-jobs", json={"source": {"event_log": log["id"]}}, headers=ACME
    )
    location = created.headers["location"]
    await finished(journey, location)

    assert (await journey.client.get(location, headers=GLOBEX)).status_code == 404
    assert (await journey.client.get(f"{location}/result", headers=GLOBEX)).status_code == 404
    assert (await journey.client.post(f"{location}/cancel", headers=GLOBEX)).status_code == 404
    simulation_path = location.replace("mining-jobs", "simulation-jobs")
    assert (await journey.client.get(simulation_path, headers=ACME)).status_code == 404
    assert (
        await journey.client.get(f"/v1/journey/event-logs/{log['id']}", headers=GLOBEX)
    ).status_code == 404
    assert (await journey.client.get("/v1/journey/event-logs", headers=GLOBEX)).json() == {
        "items": []
    }
    foreign = await journey.client.post(
        "/v1/journey/mining-jobs", json={"source": {"event_log": log["id"]}}, headers=GLOBEX
    )
    assert foreign.status_code == 422
    assert [e["field"] for e in foreign.json()["errors"]] == ["source.event_log"]
    unknown = await journey.client.get(f"/v1/journey/mining-jobs/{uuid.uuid4()}", headers=ACME)
    assert unknown.status_code == 404


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_job_whose_worker_is_killed_is_finished_by_another_replica(
    journey_settings: JourneySettingsFor, start_journey: StartJourney
) -> None:
    """Replica A, a real process, takes a slow job and is killed with SIGKILL mid-run; replica
    B takes the job up again once A's heartbeats stop, and finishes it."""
    settings = journey_settings()
    port = free_port()
    environment = {
        **os.environ,
        "CXOPS_JOURNEY_ENVIRONMENT": "test",
        "CXOPS_JOURNEY_DATABASE_URL": settings.database_url,
        "CXOPS_JOURNEY_NATS_URL": settings.nats_url,
        "CXOPS_JOURNEY_SIGNING_SECRET": settings.signing_secret,
        "CXOPS_JOURNEY_DATA_DIR": str(settings.data_dir),
        "CXOPS_JOURNEY_JOB_ACK_WAIT_SECONDS": str(settings.job_ack_wait_seconds),
        "CXOPS_JOURNEY_JOB_HEARTBEAT_SECONDS": str(settings.job_heartbeat_seconds),
        "CXOPS_JOURNEY_LOG_LEVEL": "WARNING",
    }
    replica_a = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "cxops.journey.app:create_app", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port)),
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    model = slow_model(hours=250)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as a:

            async def ready() -> bool:
                return (await a.get("/readyz")).status_code == 200

            await eventually(ready, what="replica A to be ready", within=60)
            created = await a.post(
                "/v1/journey/simulation-jobs", json={"model": model}, headers=ACME
            )
            location = created.headers["location"]

            async def taken_by_a() -> bool:
                job = (await a.get(location, headers=ACME)).json()
                return bool(job["state"] == "running")

            await eventually(taken_by_a, what="replica A to take the job", within=30)
        replica_a.send_signal(signal.SIGKILL)
        await replica_a.wait()

        async with start_journey() as replica_b:
            job = await finished(replica_b, location, within=90)
            result = await replica_b.client.get(f"{location}/result", headers=ACME)
    finally:
        if replica_a.returncode is None:
            replica_a.kill()
            await replica_a.wait()

    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2
    assert result.text == command_json("simulate", "-", "--json", stdin=json.dumps(model))


async def test_a_log_with_a_bad_row_fails_its_job_with_the_commands_reason(
    journey: RunningService, nats_client: NatsClient
) -> None:
    bad = HAND_LOG + "c4,open,yesterday at noon,front,phone\n"
    uploaded = await upload(journey, bad.encode())  # the header is all an upload checks
    created = await journey.client.post(
        "/v1/journey/mining-jobs",
        json={"source": {"event_log": uploaded.json()["id"]}},
        headers=ACME,
    )
    job = await finished(journey, created.headers["location"])
    result = await journey.client.get(f"{created.headers['location']}/result", headers=ACME)

    assert uploaded.status_code == 201
    assert job["state"] == "failed"
    assert "'yesterday at noon'" in job["error"] and "row 13" in job["error"], job["error"]
    assert (job["cases"], job["events"]) == (None, None)
    assert result.status_code == 409
    assert result.json()["state"] == "failed"
    subscription = await nats_client.jetstream().pull_subscribe(
        "cx.journey.mining_job.completed.v1", durable="test-failed", stream="CX_JOURNEY"
    )
    payload = json.loads((await subscription.fetch(1, timeout=10))[0].data)
    assert (payload["job_id"], payload["state"], payload["cases"]) == (job["id"], "failed", None)
