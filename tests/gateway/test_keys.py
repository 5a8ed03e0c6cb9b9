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
import sqlalchemy as sa
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from cxops.common.auth import INTERNAL_TOKEN_HEADER, CallerContext, Role, verify_internal_token
from cxops.common.db import Database, create_engine
from cxops.common.migrations import downgrade, upgrade
from cxops.gateway import create_key as create_key_command
from cxops.gateway.app import MIGRATIONS
from cxops.gateway.keys import (
    AgentBindingNotAllowed,
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
from tests.gateway.conftest import SECRET, Clock, StartGateway
from tests.gateway.test_auth import assert_problem

KEY_FORMAT = re.compile(r"cxk_[a-z2-7]{8}_[A-Za-z0-9_-]{43}")
AGENT = uuid.UUID("0190f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f")


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


async def api_key_columns(url: str) -> set[str] | None:
    """The columns of ``api_keys``, or None without the table."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def inspect(sync: sa.Connection) -> set[str] | None:
                inspector = sa.inspect(sync)
                if not inspector.has_table("api_keys"):
                    return None
                return {column["name"] for column in inspector.get_columns("api_keys")}

            return await connection.run_sync(inspect)
    finally:
        await engine.dispose()


async def test_the_agent_binding_migration_goes_up_down_and_up_again(database_url: str) -> None:
    """0003 adds the nullable ``agent_id`` column; taken back to 0002 the keys table is as it
    was, keys and the unique prefix included; down to nothing and up again works too."""
    await upgrade(database_url, MIGRATIONS)
    assert "agent_id" in (await api_key_columns(database_url) or set())
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            bound, _ = await create_key(
                session, tenant="acme", role=Role.AGENT, name="a", agent_id=AGENT
            )
            unbound, _ = await create_key(session, tenant="acme", role=Role.AGENT, name="b")
    finally:
        await db.dispose()

    await downgrade(database_url, MIGRATIONS, "0002")
    columns = await api_key_columns(database_url)
    assert columns is not None and "agent_id" not in columns
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.text("SELECT id, prefix FROM api_keys"))).all()
            assert len(rows) == 2
            with pytest.raises(IntegrityError):  # the prefix is still unique
                await connection.execute(
                    sa.text(
                        "INSERT INTO api_keys (id, prefix, key_hash, tenant, role, name, "
                        "created_at) VALUES (:id, :prefix, 'h', 'acme', 'agent', 'c', :at)"
                    ),
                    {"id": uuid.uuid4().hex, "prefix": bound.prefix, "at": datetime.now(UTC)},
                )
    finally:
        await engine.dispose()

    await upgrade(database_url, MIGRATIONS)
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            listed = {key.id: key.agent_id for key in await list_keys(session, tenant="acme")}
    finally:
        await db.dispose()
    assert listed == {bound.id: None, unbound.id: None}  # a binding dropped stays dropped

    await downgrade(database_url, MIGRATIONS)
    assert await api_key_columns(database_url) is None
    await upgrade(database_url, MIGRATIONS)
    assert "agent_id" in (await api_key_columns(database_url) or set())


async def test_only_an_agent_key_is_bound_to_an_agent(db: Database) -> None:
    async with db.transaction() as session:
        bound, _ = await create_key(
            session, tenant="acme", role=Role.AGENT, name="desk", agent_id=str(AGENT)
        )
        unbound, _ = await create_key(session, tenant="acme", role=Role.AGENT, name="any")
        for role in set(Role) - {Role.AGENT}:
            with pytest.raises(AgentBindingNotAllowed, match="agent_id"):
                await create_key(session, tenant="acme", role=role, name="x", agent_id=AGENT)
        with pytest.raises(ValueError, match="not a UUID"):
            await create_key(session, tenant="acme", role=Role.AGENT, name="x", agent_id="agent-7")
    assert (bound.agent_id, unbound.agent_id) == (AGENT, None)
    async with db.transaction() as session:
        listed = {key.id: key.agent_id for key in await list_keys(session, tenant="acme")}
    assert listed == {bound.id: AGENT, unbound.id: None}

    verifier = KeyVerifier(ttl_seconds=60, max_entries=10)
    verifier.db = db
    async with db.transaction() as session:
        _, key = await create_key(session, tenant="acme", role=Role.AGENT, name="k", agent_id=AGENT)
    verified = await verifier.verify(key)
    assert verified.caller() == CallerContext(
        tenant="acme", role=Role.AGENT, subject=str(verified.id), agent_id=str(AGENT)
    )


async def test_an_admin_binds_an_agent_key_to_an_agent(start_gateway: StartGateway) -> None:
    async with start_gateway() as gateway:
        admin = await gateway.key()
        created = await gateway.client.post(
            "/v1/keys",
            headers=admin,
            json={"role": "agent", "name": "desk-7", "agent_id": str(AGENT)},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["role"], body["agent_id"]) == ("agent", str(AGENT))
        unbound = await gateway.client.post(
            "/v1/keys", headers=admin, json={"role": "agent", "name": "floor", "agent_id": None}
        )
        assert unbound.status_code == 201, unbound.text
        assert unbound.json()["agent_id"] is None

        listed = (await gateway.client.get("/v1/keys", headers=admin)).json()["items"]
        by_id = {item["id"]: item for item in listed}
        assert by_id[body["id"]]["agent_id"] == str(AGENT)
        assert by_id[unbound.json()["id"]]["agent_id"] is None
        assert all("agent_id" in item for item in listed)

        for payload in [
            {"role": "integration", "name": "x", "agent_id": str(AGENT)},
            {"role": "admin", "name": "x", "agent_id": str(AGENT)},
            {"role": "agent", "name": "x", "agent_id": "agent-7"},  # not a UUID
            {"role": "agent", "name": "x", "agent_id": 7},
        ]:
            refused = await gateway.client.post("/v1/keys", headers=admin, json=payload)
            problem = assert_problem(refused, 422)
            assert [error["field"] for error in problem["errors"]] == ["agent_id"], problem

        # The document says so too, for clients and generators built from it.
        document = (await gateway.client.get("/openapi.json")).json()
        schema = document["components"]["schemas"]["KeyCreate"]
        assert "agent_id" in schema["properties"]
        [rule] = schema["allOf"]
        assert rule["then"] == {"properties": {"role": {"const": "agent"}}}


async def test_the_internal_token_of_a_bound_key_carries_its_agent(
    start_gateway: StartGateway,
) -> None:
    """What the upstream receives: the claim ``agent`` for a bound key, none for an unbound
    one, each key's own (tokens are reused per key)."""

    async def caller_seen_upstream(key: str) -> CallerContext:
        response = await gateway.client.get("/v1/journey/echo", headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        [token] = [v for k, v in response.json()["headers"] if k == INTERNAL_TOKEN_HEADER.lower()]
        return verify_internal_token(token, secret=SECRET)

    async with start_gateway() as gateway:
        bound, bound_key = await gateway.create_key(role=Role.AGENT, agent_id=AGENT)
        unbound, unbound_key = await gateway.create_key(role=Role.AGENT)
        for _ in range(2):  # minted, then reused
            assert await caller_seen_upstream(bound_key) == CallerContext(
                tenant="acme", role=Role.AGENT, subject=str(bound.id), agent_id=str(AGENT)
            )
            assert await caller_seen_upstream(unbound_key) == CallerContext(
                tenant="acme", role=Role.AGENT, subject=str(unbound.id)
            )


def test_the_gateway_images_command_binds_an_agent_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m cxops.gateway.create_key ... --agent-id UUID``, as in the gateway's image."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'image.db'}"
    asyncio.run(upgrade(url, MIGRATIONS))
    monkeypatch.setenv("CXOPS_GATEWAY_DATABASE_URL", url)
    args = ["--tenant", "acme", "--role", "agent", "--agent-id", str(AGENT)]
    assert create_key_command.main(args) == 0
    out, err = capsys.readouterr()
    assert KEY_FORMAT.fullmatch(out.strip()) and f"agent {AGENT}" in err

    refused = ["--tenant", "acme", "--role", "viewer", "--agent-id", str(AGENT)]
    assert create_key_command.main(refused) == 1
    assert "agent_id may be set only for role 'agent'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        create_key_command.main(["--tenant", "acme", "--role", "agent", "--agent-id", "x"])

    async def listed() -> list[Any]:
        database = Database(url)
        try:
            async with database.transaction() as session:
                return [key.agent_id for key in await list_keys(session)]
        finally:
            await database.dispose()

    assert asyncio.run(listed()) == [AGENT]
