"""The audit log: every authenticated mutation, readable by the admins of its tenant only."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uuid6

from cxops.common.auth import Role
from cxops.common.db import Database
from cxops.common.migrations import upgrade
from cxops.gateway.app import MIGRATIONS
from cxops.gateway.audit import AUDIT_BATCH, AUDIT_FAILURES, AuditEvent, AuditWriter, query_audit
from tests.gateway.conftest import Gateway, StartGateway
from tests.gateway.test_auth import assert_problem
from tests.support.services import eventually


async def audit(gateway: Gateway, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await gateway.client.get("/v1/audit", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit_count(gateway: Gateway, headers: dict[str, str], count: int) -> list[Any]:
    """The records, once there are ``count`` of them (they are written after the response)."""

    async def enough() -> list[Any] | None:
        items: list[Any] = (await audit(gateway, headers, limit=1000))["items"]
        return items if len(items) >= count else None

    items = await eventually(enough, what="the audit records")
    assert items is not None, f"fewer than {count} audit records"
    assert len(items) == count
    return items


async def test_mutations_are_recorded_for_the_tenants_admins_only(
    start_gateway: StartGateway, database_url: str
) -> None:
    async with start_gateway(database_url) as gateway:
        admin_record, admin_key = await gateway.create_key(tenant="acme")
        admin = {"Authorization": f"Bearer {admin_key}"}
        viewer_record, viewer_key = await gateway.create_key(tenant="acme", role=Role.VIEWER)
        viewer = {"X-API-Key": viewer_key}
        globex = await gateway.key(tenant="globex")

        calls: list[httpx.Response] = [
            await gateway.client.post(
                "/v1/keys", headers=admin, json={"role": "agent", "name": "a"}
            ),
            await gateway.client.put("/v1/journey/echo?secret=1", headers=admin, content=b"x"),
            await gateway.client.patch("/v1/feedback/echo?status=422", headers=admin, json={}),
            await gateway.client.post("/v1/keys", headers=viewer, json={"role": "admin"}),
        ]
        created_id = calls[0].json()["id"]
        calls.append(await gateway.client.delete(f"/v1/keys/{created_id}", headers=admin))
        calls.append(await gateway.client.post("/v1/journey/echo", headers=globex))
        # Not recorded: reads, and calls without a valid key.
        await gateway.client.get("/v1/journey/echo", headers=admin)
        await gateway.client.post("/v1/journey/echo", headers={"X-API-Key": "cxk_nope"})
        await gateway.client.post("/v1/journey/echo")

        items = await audit_count(gateway, admin, 5)
        expected = {
            (str(admin_record.id), "POST", "/v1/keys", 201),
            (str(admin_record.id), "PUT", "/v1/journey/echo", 200),  # no query string
            (str(admin_record.id), "PATCH", "/v1/feedback/echo", 422),
            (str(viewer_record.id), "POST", "/v1/keys", 403),
            (str(admin_record.id), "DELETE", f"/v1/keys/{created_id}", 200),
        }
        assert {(i["key_id"], i["method"], i["path"], i["status"]) for i in items} == expected
        assert {i["tenant"] for i in items} == {"acme"}
        assert {i["request_id"] for i in items} == {c.headers["x-request-id"] for c in calls[:5]}
        assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
        for item in items:
            assert datetime.fromisoformat(item["occurred_at"]).tzinfo is not None

        [theirs] = await audit_count(gateway, globex, 1)
        assert theirs["path"] == "/v1/journey/echo" and theirs["tenant"] == "globex"
        assert_problem(await gateway.client.get("/v1/audit", headers=viewer), 403)


async def test_filters_and_pages(start_gateway: StartGateway, database_url: str) -> None:
    async with start_gateway(database_url) as gateway:
        record, key = await gateway.create_key()
        admin = {"X-API-Key": key}
        before = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(4):
            await gateway.client.post("/v1/journey/echo", headers=admin)
        await gateway.client.delete(f"/v1/keys/{uuid.uuid4()}", headers=admin)  # 404
        everything = await audit_count(gateway, admin, 5)

        deletes = (await audit(gateway, admin, method="DELETE"))["items"]
        assert [(d["method"], d["status"]) for d in deletes] == [("DELETE", 404)]
        assert len((await audit(gateway, admin, status=200))["items"]) == 4
        assert len((await audit(gateway, admin, key_id=str(record.id)))["items"]) == 5
        assert len((await audit(gateway, admin, since=before.isoformat()))["items"]) == 5
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert (await audit(gateway, admin, since=later))["items"] == []
        assert len((await audit(gateway, admin, until=later))["items"]) == 5

        pages: list[Any] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await audit(gateway, admin, **params)
            pages.append([item["id"] for item in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [i for p in pages for i in p] == [item["id"] for item in everything]

        # Without an offset a time is UTC, as everywhere in cxops.
        naive = (datetime.now(UTC) + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
        assert (await audit(gateway, admin, since=naive))["items"] == []
        assert len((await audit(gateway, admin, until=naive))["items"]) == 5
        # The whole range in UTC is a valid window; past its edges (issue 12, defect 2: a 500
        # before) and numbers are 422 naming the parameter.
        everything = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}
        assert len((await audit(gateway, admin, **everything))["items"]) == 5
        for name, value in [
            ("until", "9999-12-31T23:59:59-01:00"),
            ("since", "0001-01-01T00:00:00+01:00"),
            ("since", "1767225600"),
            ("until", "2026-13-01T00:00:00Z"),
        ]:
            refused = await gateway.client.get("/v1/audit", headers=admin, params={name: value})
            assert [e["field"] for e in assert_problem(refused, 422)["errors"]] == [name], value
        assert_problem(
            await gateway.client.get("/v1/audit", headers=admin, params={"method": "GET"}), 422
        )


async def test_refusals_after_authentication_are_recorded(start_gateway: StartGateway) -> None:
    async with start_gateway(
        max_body_bytes=100, rate_limit_per_second=0.1, rate_limit_burst=2
    ) as gw:
        headers = await gw.key()
        assert (
            await gw.client.post("/v1/journey/echo", headers=headers, content=b"x" * 101)
        ).status_code == 413
        assert (await gw.client.get("/v1/audit", headers=headers)).status_code == 200
        assert (await gw.client.post("/v1/journey/echo", headers=headers)).status_code == 429

    async with start_gateway() as gw:  # same database, no limits in the way
        items = await audit_count(gw, headers, 2)
        assert sorted(i["status"] for i in items) == [413, 429]


def event(n: int, tenant: str = "acme") -> AuditEvent:
    return AuditEvent(
        id=uuid6.uuid7(),
        key_id=uuid.uuid4(),
        tenant=tenant,
        method="POST",
        path=f"/v1/feedback/responses/{n}",
        status=201,
        request_id=f"r{n}",
        occurred_at=datetime.now(UTC),
    )


async def test_the_writer_commits_a_burst_in_a_few_transactions(database_url: str) -> None:
    await upgrade(database_url, MIGRATIONS)
    db = Database(database_url)
    writer = AuditWriter(db)
    writer.start()
    batches_before = AUDIT_BATCH._value.get()
    try:
        await asyncio.gather(*(writer.record(event(n)) for n in range(300)))
        await writer.flush()
        assert AUDIT_BATCH._value.get() - batches_before <= 5
        await writer.record(event(300))
    finally:
        await writer.close()  # what is still queued is written before it stops
    async with db.transaction() as session:
        rows, _ = await query_audit(session, tenant="acme", limit=1000)
    await db.dispose()
    assert len(rows) == 301
    assert {row.request_id for row in rows} == {f"r{n}" for n in range(301)}


async def test_a_bad_path_never_costs_another_tenants_records(
    start_gateway: StartGateway, database_url: str
) -> None:
    """Issue 12, defect 1: 30 ``POST /v1/feedback/x%00y`` from one tenant's viewer key, mixed
    with another tenant's 95 mutations, left that tenant 1 record on PostgreSQL (which refuses
    NUL in text: the batch carrying the row was retried, then dropped)."""
    async with start_gateway(database_url) as gateway:
        viewer = await gateway.key(tenant="mallory", role=Role.VIEWER)
        admin = await gateway.key(tenant="acme")
        mallory_admin = await gateway.key(tenant="mallory")
        calls = [gateway.client.post("/v1/journey/echo", headers=admin) for _ in range(95)]
        for n in range(30):
            calls.insert(n * 3, gateway.client.post("/v1/feedback/x%00y", headers=viewer))
        responses = await asyncio.gather(*calls)
        await gateway.state.audit.flush()
        assert len(await audit_count(gateway, admin, 95)) == 95

        refused = [r for r in responses if r.request.url.raw_path == b"/v1/feedback/x%00y"]
        assert len(refused) == 30
        for response in refused:
            assert_problem(response, 400)
        assert all(r.status_code == 200 for r in responses if r not in refused)
        # Refused before the key was looked at, like a 401: nothing of it is stored.
        assert (await audit(gateway, mallory_admin))["items"] == []


async def test_a_row_the_database_refuses_costs_no_other_row(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(database_url, MIGRATIONS)
    db = Database(database_url)
    writer = AuditWriter(db, retry_delays=(0.01,))
    writer.start()
    first = event(0)
    await writer.record(first)
    await writer.flush()
    failures_before = AUDIT_FAILURES._value.get()
    refused = dataclasses.replace(event(13), id=first.id)  # the primary key is taken
    batch = [event(n) for n in range(1, 13)] + [refused] + [event(n) for n in range(14, 40)]
    try:
        for item in batch:  # queued before the writer runs again: one batch
            await writer.record(item)
        await writer.flush()
    finally:
        await writer.close()
    async with db.transaction() as session:
        rows, _ = await query_audit(session, tenant="acme", limit=1000)
    await db.dispose()
    assert {row.request_id for row in rows} == {f"r{n}" for n in range(40)} - {"r13"}
    assert AUDIT_FAILURES._value.get() - failures_before == 1
    [lost] = [r.getMessage() for r in caplog.records if "audit record lost" in r.getMessage()]
    assert "request_id=r13" in lost and "refused" in lost


async def test_control_characters_are_stored_escaped(database_url: str) -> None:
    await upgrade(database_url, MIGRATIONS)
    db = Database(database_url)
    writer = AuditWriter(db, retry_delays=())
    writer.start()
    failures_before = AUDIT_FAILURES._value.get()
    try:
        await writer.record(
            dataclasses.replace(event(1), path="/v1/feedback/x\x00y\n\x85é", request_id="r\x001")
        )
        await writer.flush()
    finally:
        await writer.close()
    async with db.transaction() as session:
        [row], _ = await query_audit(session, tenant="acme")
    await db.dispose()
    assert AUDIT_FAILURES._value.get() == failures_before
    assert (row.path, row.request_id) == ("/v1/feedback/x%00y%0A%C2%85é", "r%001")


async def test_an_unreachable_database_is_retried_then_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}")  # a directory: it never opens
    writer = AuditWriter(db, retry_delays=(0.01, 0.01))
    writer.start()
    failures_before = AUDIT_FAILURES._value.get()
    try:
        for n in range(3):
            await writer.record(event(n))
        await writer.flush()
    finally:
        await writer.close()
        await db.dispose()
    assert AUDIT_FAILURES._value.get() - failures_before == 3
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    lost = [r.getMessage() for r in caplog.records if "audit record lost" in r.getMessage()]
    assert sorted(m.split("request_id=")[1].split()[0] for m in lost) == ["r0", "r1", "r2"]


async def test_records_that_cannot_be_written_are_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}")
    writer = AuditWriter(db, retry_delays=(0.01,))
    writer.start()
    failures_before = AUDIT_FAILURES._value.get()
    try:
        await writer.record(event(1))
        await writer.record(event(2))
        await writer.flush()
    finally:
        await writer.close()
        await db.dispose()
    assert AUDIT_FAILURES._value.get() - failures_before == 2
    lost = [r.getMessage() for r in caplog.records if "audit record lost" in r.getMessage()]
    assert len(lost) == 2 and "request_id=r1" in lost[0] + lost[1]
