"""Who may call: API keys in both header forms, revocation, roles and the rate limit."""

from typing import Any

import httpx
import pytest
from sqlalchemy import event

from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.gateway import keys as gateway_keys
from cxops.gateway.keys import generate_key, revoke_key
from tests.gateway.conftest import Clock, Gateway, StartGateway

DEAD_LETTERS = "/v1/routing/ops/dead-letters"
ECHO = "/v1/journey/echo"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_no_key_is_401_with_a_challenge(gateway: Gateway) -> None:
    for method, path in [
        ("GET", DEAD_LETTERS),
        ("POST", "/v1/feedback/responses"),
        ("GET", "/v1/keys"),
        ("GET", "/v1/no-such-thing"),  # unknown paths do not reveal themselves to strangers
    ]:
        response = await gateway.client.request(method, path)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_or_malformed_keys_are_401(gateway: Gateway) -> None:
    _, real = await gateway.create_key()
    prefix = real.split("_")[1]
    unknown, _ = generate_key()
    wrong_secret = f"cxk_{prefix}_{generate_key()[0].split('_', 2)[2]}"
    for key in (unknown, wrong_secret, "not-a-key", real + "x", ""):
        response = await gateway.client.get(DEAD_LETTERS, headers={"X-API-Key": key})
        assert_problem(response, 401)
        assert "invalid_token" in response.headers["www-authenticate"] or key == ""


async def test_both_header_forms_are_accepted(gateway: Gateway) -> None:
    _, key = await gateway.create_key(role=Role.OPS_LEAD)
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        response = await gateway.client.get(DEAD_LETTERS, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "count": 0}
    _, other = await gateway.create_key(role=Role.OPS_LEAD)
    response = await gateway.client.get(
        DEAD_LETTERS, headers={"Authorization": f"Bearer {key}", "X-API-Key": other}
    )
    assert_problem(response, 401)  # two different keys: refuse rather than guess


async def test_a_role_without_the_right_is_403(gateway: Gateway) -> None:
    viewer = await gateway.key(role=Role.VIEWER)
    assert_problem(await gateway.client.get("/v1/audit", headers=viewer), 403)
    assert_problem(await gateway.client.get("/v1/keys", headers=viewer), 403)
    created = await gateway.client.post(
        "/v1/keys", headers=viewer, json={"role": "admin", "name": "escalate"}
    )
    assert_problem(created, 403)
    # The service applies its own guard to the role carried by the internal token.
    assert_problem(await gateway.client.get(DEAD_LETTERS, headers=viewer), 403)


async def test_a_key_revoked_through_the_api_is_refused_at_once(
    start_gateway: StartGateway, database_url: str
) -> None:
    async with start_gateway(database_url) as gateway:
        admin = await gateway.key()
        record, victim = await gateway.create_key(role=Role.AGENT)
        headers = {"X-API-Key": victim}
        assert (await gateway.client.get("/v1/journey/echo", headers=headers)).status_code == 200

        revoked = await gateway.client.delete(f"/v1/keys/{record.id}", headers=admin)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None

        refused = await gateway.client.get("/v1/journey/echo", headers=headers)
        assert "revoked" in str(assert_problem(refused, 401)["detail"])


async def test_a_revocation_made_elsewhere_applies_within_the_cache_ttl(
    start_gateway: StartGateway,
) -> None:
    """Another replica or ``cxops keys revoke`` cannot reach this process's cache: the bound is
    ``key_cache_ttl_seconds``."""
    async with start_gateway(key_cache_ttl_seconds=30) as gateway:
        gateway.state.keys.clock = clock = Clock()
        record, key = await gateway.create_key(role=Role.AGENT)
        headers = {"X-API-Key": key}
        assert (await gateway.client.get("/v1/journey/echo", headers=headers)).status_code == 200
        async with gateway.state.db.transaction() as session:
            await revoke_key(session, key_id=record.id)
        clock.now += 29.5
        assert (await gateway.client.get("/v1/journey/echo", headers=headers)).status_code == 200
        clock.now += 0.5
        assert_problem(await gateway.client.get("/v1/journey/echo", headers=headers), 401)


async def test_over_the_rate_is_429_with_retry_after(start_gateway: StartGateway) -> None:
    async with start_gateway(rate_limit_per_second=0.5, rate_limit_burst=2) as gateway:
        headers = await gateway.key(role=Role.AGENT)
        for _ in range(2):
            assert (await gateway.client.get("/v1/journey/echo", headers=headers)).is_success
        limited = await gateway.client.get("/v1/journey/echo", headers=headers)
        body = assert_problem(limited, 429)
        retry_after = int(limited.headers["retry-after"])
        assert retry_after >= 1
        assert body["retry_after"] == retry_after
        # Another key has its own bucket.
        other = await gateway.key(role=Role.AGENT)
        assert (await gateway.client.get("/v1/journey/echo", headers=other)).is_success


@pytest.mark.parametrize("role", [Role.AGENT, Role.INTEGRATION])
async def test_non_admins_cannot_manage_keys(gateway: Gateway, role: Role) -> None:
    headers = await gateway.key(role=role)
    record, _ = await gateway.create_key()
    assert_problem(await gateway.client.delete(f"/v1/keys/{record.id}", headers=headers), 403)


def key_lookups(gateway: Gateway) -> list[str]:
    """The queries by key prefix the gateway makes from now on."""
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys.prefix =" in statement:
            lookups.append(statement)

    event.listen(gateway.state.db.engine.sync_engine, "before_cursor_execute", count)
    return lookups


async def test_failed_authentications_are_limited_per_client_address(
    start_gateway: StartGateway,
) -> None:
    """Issue 12, defect 4: well-formed random keys each cost a query, with no limit before
    authentication. Past its budget of failures an address is refused before any lookup."""
    async with start_gateway(auth_failure_burst=3, auth_failure_rate_per_second=0.5) as gateway:
        gateway.state.auth_failures.clock = clock = Clock()
        _, key = await gateway.create_key(role=Role.AGENT)
        valid = {"X-API-Key": key}
        lookups = key_lookups(gateway)
        for _ in range(3):
            made_up = {"X-API-Key": generate_key()[0]}
            assert_problem(await gateway.client.get(ECHO, headers=made_up), 401)
        assert len(lookups) == 3

        for headers in ({"X-API-Key": generate_key()[0]}, {}, valid):
            limited = await gateway.client.get(ECHO, headers=headers)
            body = assert_problem(limited, 429)
            assert limited.headers["retry-after"] == "2" and body["retry_after"] == 2
        assert len(lookups) == 3  # not one query more

        # Another address has a budget of its own.
        other_address = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=gateway.url, transport=other_address) as other:
            assert (await other.get(ECHO, headers=valid)).status_code == 200

        clock.now += 2  # one failure's worth is back; a success takes none of it
        assert (await gateway.client.get(ECHO, headers=valid)).status_code == 200
        assert (await gateway.client.get(ECHO, headers=valid)).status_code == 200
        assert_problem(await gateway.client.get(ECHO, headers={"X-API-Key": "nope"}), 401)
        assert_problem(await gateway.client.get(ECHO, headers=valid), 429)

        metrics = (await gateway.client.get("/metrics")).text
        assert 'cxops_gateway_auth_rejections_total{reason="too_many_failures"}' in metrics


async def test_a_key_created_through_the_gateway_works_at_once(
    start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when its prefix had just been tried and is remembered as unknown."""
    async with start_gateway(key_negative_cache_ttl_seconds=60) as gateway:
        admin = await gateway.key()
        drawn = generate_key()
        assert_problem(await gateway.client.get(ECHO, headers={"X-API-Key": drawn[0]}), 401)
        monkeypatch.setattr(gateway_keys, "generate_key", lambda: drawn)
        created = await gateway.client.post(
            "/v1/keys", headers=admin, json={"role": "agent", "name": "fresh"}
        )
        assert created.status_code == 201 and created.json()["key"] == drawn[0]
        response = await gateway.client.get(ECHO, headers={"X-API-Key": drawn[0]})
        assert response.status_code == 200, response.text
