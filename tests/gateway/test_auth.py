"""Who may call: API keys in both header forms, revocation, roles and the rate limit."""

import asyncio
from typing import Any

import httpx
import pytest

from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.gateway.keys import generate_key, revoke_key
from tests.gateway.conftest import Gateway, StartGateway

DEAD_LETTERS = "/v1/routing/ops/dead-letters"


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
    async with start_gateway(key_cache_ttl_seconds=0.3) as gateway:
        record, key = await gateway.create_key(role=Role.AGENT)
        headers = {"X-API-Key": key}
        assert (await gateway.client.get("/v1/journey/echo", headers=headers)).status_code == 200
        async with gateway.runtime.db.transaction() as session:
            await revoke_key(session, key_id=record.id)
        await asyncio.sleep(0.35)
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
