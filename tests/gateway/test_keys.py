"""API keys: the functions the CLI uses, and the admin's ``/v1/keys`` endpoints."""

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from cxops.common.auth import Role
from cxops.common.db import Database
from cxops.common.migrations import upgrade
from cxops.gateway.app import MIGRATIONS
from cxops.gateway.keys import (
    InvalidTenant,
    KeyNotFound,
    KeyRejected,
    KeyVerifier,
    create_key,
    generate_key,
    hash_key,
    list_keys,
    parse_key,
    revoke_key,
)
from cxops.gateway.models import ApiKey
from tests.gateway.conftest import Clock, StartGateway
from tests.gateway.test_auth import assert_problem

KEY_FORMAT = re.compile(r"cxk_[a-z2-7]{8}_[A-Za-z0-9_-]{43}")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await upgrade(database_url, MIGRATIONS)
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_create_list_and_revoke(db: Database) -> None:
    async with db.transaction() as session:
        record, plaintext = await create_key(session, tenant="acme", role="agent", name=" crm ")
        other, _ = await create_key(session, tenant="globex", role=Role.ADMIN, name="ops")
    assert KEY_FORMAT.fullmatch(plaintext)
    assert parse_key(plaintext) == record.prefix
    assert (record.tenant, record.role, record.name) == ("acme", Role.AGENT, "crm")
    assert record.created_at.tzinfo is not None and record.revoked_at is None

    async with db.transaction() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == record.id))
        assert row is not None
        assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert plaintext not in {str(v) for v in row.model_dump().values()}
        assert [k.id for k in await list_keys(session, tenant="acme")] == [record.id]
        assert {k.id for k in await list_keys(session)} == {record.id, other.id}

    async with db.transaction() as session:
        revoked = await revoke_key(session, key_id=record.id)
    async with db.transaction() as session:
        again = await revoke_key(session, key_id=str(record.id))
        [listed] = await list_keys(session, tenant="acme")
    assert revoked.revoked_at is not None
    assert again.revoked_at == revoked.revoked_at  # idempotent: the first revocation stands
    assert listed.revoked and listed.revoked_at == revoked.revoked_at

    async with db.transaction() as session:
        with pytest.raises(KeyNotFound):
            await revoke_key(session, key_id=uuid.uuid4())
        with pytest.raises(KeyNotFound):
            await revoke_key(session, key_id="not-a-uuid")
        with pytest.raises(KeyNotFound):  # another tenant's key does not exist for you
            await revoke_key(session, key_id=other.id, tenant="acme")


@pytest.mark.parametrize(
    "tenant", ["", "Acme", "acme_corp", "-acme", "a" * 65, "acme corp", "acmé"]
)
async def test_tenants_are_slugs(tmp_path: Path, tenant: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await upgrade(url, MIGRATIONS)
    database = Database(url)
    try:
        async with database.transaction() as session:
            with pytest.raises(InvalidTenant):
                await create_key(session, tenant=tenant, role=Role.ADMIN, name="x")
            with pytest.raises(ValueError):
                await create_key(session, tenant="acme", role="superuser", name="x")
            with pytest.raises(ValueError):
                await create_key(session, tenant="acme", role=Role.ADMIN, name="  ")
            record, _ = await create_key(session, tenant="a" * 64, role=Role.ADMIN, name="x")
            assert record.tenant == "a" * 64
    finally:
        await database.dispose()


async def test_an_admin_manages_their_tenants_keys(
    start_gateway: StartGateway, database_url: str
) -> None:
    async with start_gateway(database_url) as gateway:
        admin = await gateway.key(tenant="acme")
        globex = await gateway.key(tenant="globex")

        created = await gateway.client.post(
            "/v1/keys", headers=admin, json={"role": "integration", "name": "crm"}
        )
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"
        body = created.json()
        assert KEY_FORMAT.fullmatch(body["key"])
        assert (body["tenant"], body["role"], body["name"]) == ("acme", "integration", "crm")
        assert "key_hash" not in body
        # Usable at once: the key is committed before the 201 is sent.
        usable = await gateway.client.get("/v1/journey/echo", headers={"X-API-Key": body["key"]})
        assert usable.status_code == 200

        listed = await gateway.client.get("/v1/keys", headers=admin)
        assert listed.status_code == 200
        items = listed.json()["items"]
        assert body["id"] in {item["id"] for item in items}
        assert {item["tenant"] for item in items} == {"acme"}
        assert all("key" not in item and "key_hash" not in item for item in items)
        other_items = (await gateway.client.get("/v1/keys", headers=globex)).json()["items"]
        assert body["id"] not in {item["id"] for item in other_items}

        # Another tenant's admin cannot revoke it; an unknown id is 404 too.
        assert_problem(await gateway.client.delete(f"/v1/keys/{body['id']}", headers=globex), 404)
        assert_problem(await gateway.client.delete(f"/v1/keys/{uuid.uuid4()}", headers=admin), 404)
        revoked = await gateway.client.delete(f"/v1/keys/{body['id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        refused = await gateway.client.get("/v1/journey/echo", headers={"X-API-Key": body["key"]})
        assert_problem(refused, 401)


async def test_key_creation_is_validated(start_gateway: StartGateway) -> None:
    async with start_gateway() as gateway:
        admin = await gateway.key()
        for payload, field in [
            ({"role": "root", "name": "x"}, "role"),
            ({"role": "agent", "name": ""}, "name"),
            ({"role": "agent", "name": "x", "tenant": "globex"}, "tenant"),  # no cross-tenant
        ]:
            response = await gateway.client.post("/v1/keys", headers=admin, json=payload)
            body = assert_problem(response, 422)
            assert field in {error["field"] for error in body["errors"]}


async def test_the_key_cache_shares_cold_lookups_and_forgets_on_invalidate(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}"
    await upgrade(url, MIGRATIONS)
    db = Database(url)
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys.prefix =" in statement:
            lookups.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.transaction() as session:
            record, key = await create_key(session, tenant="acme", role=Role.AGENT, name="k")
        lookups.clear()
        verifier = KeyVerifier(ttl_seconds=60, max_entries=10)
        verifier.db = db

        verified = await asyncio.gather(*(verifier.verify(key) for _ in range(20)))
        assert {v.id for v in verified} == {record.id} and len(lookups) == 1
        wrong = f"cxk_{record.prefix}_{'A' * 43}"
        with pytest.raises(KeyRejected):
            await verifier.verify(wrong)  # refused from the cache: no query
        assert len(lookups) == 1

        async with db.transaction() as session:
            await revoke_key(session, key_id=record.id)
        await verifier.verify(key)  # still cached: this is the TTL bound
        verifier.invalidate(record.prefix)
        with pytest.raises(KeyRejected, match="revoked"):
            await verifier.verify(key)
        assert len(lookups) == 2
    finally:
        await db.dispose()


async def last_used_at(db: Database, key_id: uuid.UUID) -> Any:
    async with db.transaction() as session:
        query = select(ApiKey.last_used_at).where(ApiKey.id == key_id)
        return await session.scalar(query.execution_options(all_tenants=True))


async def test_only_a_matching_secret_moves_last_used_at(
    start_gateway: StartGateway, database_url: str
) -> None:
    """The prefix is public (it is in every key listing): a wrong secret with it proves nothing,
    cached or not, and must leave no trace on the key."""
    async with start_gateway(database_url) as gateway:
        record, key = await gateway.create_key(role=Role.AGENT)
        wrong = {"X-API-Key": f"cxk_{record.prefix}_{'A' * 43}"}
        for _ in range(2):  # a cold lookup, then from the cache
            assert_problem(await gateway.client.get("/v1/journey/echo", headers=wrong), 401)
        assert await last_used_at(gateway.state.db, record.id) is None

        response = await gateway.client.get("/v1/journey/echo", headers={"X-API-Key": key})
        assert response.status_code == 200
        first_use = await last_used_at(gateway.state.db, record.id)
        assert first_use is not None
        assert_problem(await gateway.client.get("/v1/journey/echo", headers=wrong), 401)
        assert await last_used_at(gateway.state.db, record.id) == first_use


async def test_unknown_prefixes_are_remembered_briefly(tmp_path: Path) -> None:
    """Issue 12, defect 4: a stream of requests with one unknown key costs one query; a key
    created elsewhere meanwhile works within ``negative_ttl_seconds``, one created through this
    process (which invalidates its prefix) at once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'negative.db'}"
    await upgrade(url, MIGRATIONS)
    db = Database(url)
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys.prefix =" in statement:
            lookups.append(statement)

    async def store(plaintext: str, prefix: str) -> None:
        async with db.transaction() as session:
            session.add(
                ApiKey(
                    id=uuid.uuid4(),
                    prefix=prefix,
                    key_hash=hash_key(plaintext),
                    tenant="acme",
                    role="agent",
                    name="elsewhere",
                    created_at=datetime.now(UTC),
                )
            )

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    clock = Clock()
    verifier = KeyVerifier(ttl_seconds=60, max_entries=3, negative_ttl_seconds=2, clock=clock)
    verifier.db = db
    try:
        plaintext, prefix = generate_key()
        for _ in range(5):
            with pytest.raises(KeyRejected):
                await verifier.verify(plaintext)
        assert len(lookups) == 1

        await store(plaintext, prefix)  # by the CLI or another replica
        clock.now += 1.5
        with pytest.raises(KeyRejected):
            await verifier.verify(plaintext)
        clock.now += 0.5
        assert (await verifier.verify(plaintext)).prefix == prefix
        assert len(lookups) == 2

        fresh, fresh_prefix = generate_key()
        with pytest.raises(KeyRejected):
            await verifier.verify(fresh)
        await store(fresh, fresh_prefix)
        verifier.invalidate(fresh_prefix)  # what creating it through this gateway does
        assert (await verifier.verify(fresh)).prefix == fresh_prefix
        assert len(lookups) == 4

        made_up = [generate_key()[0] for _ in range(4)]  # one more than the cache holds
        for key in [*made_up, made_up[0], made_up[-1]]:
            with pytest.raises(KeyRejected):
                await verifier.verify(key)
        assert len(lookups) == 4 + 4 + 1  # the oldest was forgotten, the newest was not
    finally:
        await db.dispose()
