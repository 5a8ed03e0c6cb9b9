import time
from types import SimpleNamespace
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI

from cxops.common.auth import (
    INTERNAL_TOKEN_HEADER,
    Caller,
    CallerContext,
    InternalTokenVerifier,
    Role,
    acting_agent,
    mint_internal_token,
    require_role,
    verify_internal_token,
)
from cxops.common.errors import Problem, install_problem_handlers

SECRET = "x" * 40


def test_round_trip() -> None:
    caller = CallerContext(tenant="acme", role=Role.SUPERVISOR, subject="key-1")
    assert (
        verify_internal_token(mint_internal_token(caller, secret=SECRET), secret=SECRET) == caller
    )


AGENT = "0190f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"


def test_round_trip_with_an_agent() -> None:
    """A key bound to a routing agent: the token carries it as the claim ``agent``."""
    caller = CallerContext(tenant="acme", role=Role.AGENT, subject="key-1", agent_id=AGENT)
    token = mint_internal_token(caller, secret=SECRET)
    assert jwt.decode(token, options={"verify_signature": False})["agent"] == AGENT
    assert verify_internal_token(token, secret=SECRET) == caller


def test_a_token_without_an_agent_has_no_agent_claim() -> None:
    caller = CallerContext(tenant="acme", role=Role.AGENT, subject="key-1")
    token = mint_internal_token(caller, secret=SECRET)
    assert "agent" not in jwt.decode(token, options={"verify_signature": False})
    assert verify_internal_token(token, secret=SECRET).agent_id is None


def test_an_agent_claim_that_is_not_a_string_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "cxops-gateway",
            "aud": "cxops-services",
            "sub": "k",
            "tenant": "acme",
            "role": "agent",
            "agent": {"id": AGENT},
            "iat": now,
            "exp": now + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Problem) as err:
        verify_internal_token(token, secret=SECRET)
    assert err.value.status == 401


def test_acting_agent() -> None:
    bound = CallerContext("acme", Role.AGENT, "k", agent_id=AGENT)
    assert acting_agent(bound) == AGENT
    with pytest.raises(Problem) as err:
        acting_agent(CallerContext("acme", Role.AGENT, "k"))
    assert err.value.status == 403
    assert err.value.detail == "an agent key must be bound to an agent (agent_id) to act on offers"
    for role in Role:
        if role is not Role.AGENT:  # they may act for any agent, bound or not
            assert acting_agent(CallerContext("acme", role, "k")) is None
            assert acting_agent(CallerContext("acme", role, "k", agent_id=AGENT)) is None


@pytest.mark.parametrize(
    "token",
    [
        mint_internal_token(CallerContext("acme", Role.ADMIN, "k"), secret="y" * 40),
        jwt.encode({"tenant": "acme", "role": "admin", "sub": "k"}, SECRET, algorithm="HS256"),
        jwt.encode(
            {
                "iss": "cxops-gateway",
                "aud": "cxops-services",
                "sub": "k",
                "tenant": "acme",
                "role": "admin",
                "iat": int(time.time()) - 600,
                "exp": int(time.time()) - 300,
            },
            SECRET,
            algorithm="HS256",
        ),
        "not-a-token",
    ],
    ids=["wrong-secret", "no-issuer-audience-expiry", "expired", "garbage"],
)
def test_rejects_bad_tokens(token: str) -> None:
    with pytest.raises(Problem) as err:
        verify_internal_token(token, secret=SECRET)
    assert err.value.status == 401


def test_unsigned_token_refused() -> None:
    token = jwt.encode(
        {
            "iss": "cxops-gateway",
            "aud": "cxops-services",
            "sub": "k",
            "tenant": "a",
            "role": "admin",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        key=None,
        algorithm="none",
    )
    with pytest.raises(Problem):
        verify_internal_token(token, secret=SECRET)


def _app() -> FastAPI:
    app = FastAPI()
    app.state.cxops = SimpleNamespace(tokens=InternalTokenVerifier(SECRET))
    install_problem_handlers(app)

    @app.get("/whoami")
    async def whoami(caller: Caller) -> dict[str, str]:
        return {"tenant": caller.tenant, "role": caller.role.value}

    @app.post("/supervise")
    async def supervise(
        caller: Annotated[CallerContext, Depends(require_role(Role.SUPERVISOR))],
    ) -> dict[str, str]:
        return {"ok": caller.subject}

    return app


def _headers(role: Role, tenant: str = "acme") -> dict[str, str]:
    token = mint_internal_token(CallerContext(tenant, role, "key-9"), secret=SECRET)
    return {INTERNAL_TOKEN_HEADER: token}


async def test_dependency_and_role_guard() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        missing = await client.get("/whoami")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["www-authenticate"] == "Bearer"

        ok = await client.get("/whoami", headers=_headers(Role.VIEWER, "globex"))
        assert ok.json() == {"tenant": "globex", "role": "viewer"}

        forbidden = await client.post("/supervise", headers=_headers(Role.AGENT))
        assert forbidden.status_code == 403
        assert "agent" in forbidden.json()["detail"]

        for role in (Role.SUPERVISOR, Role.ADMIN):
            allowed = await client.post("/supervise", headers=_headers(role))
            assert allowed.status_code == 200


def test_a_verified_token_is_remembered_until_it_expires_and_no_longer() -> None:
    """The memory saves the HMAC work, never a check: a forged token is refused even after a
    valid one was seen, and a remembered token is checked afresh once its ``exp`` has passed
    (shown here by a verifier whose secret changed: only its memory could still accept it)."""
    token = mint_internal_token(CallerContext("acme", Role.AGENT, "key-1"), secret=SECRET)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    now = [expires_at - 30.0]
    verifier = InternalTokenVerifier(SECRET, clock=lambda: now[0])
    assert verifier.verify(token) == CallerContext("acme", Role.AGENT, "key-1")

    forged = jwt.encode(jwt.decode(token, options={"verify_signature": False}), "y" * 40)
    with pytest.raises(Problem):
        verifier.verify(forged)

    verifier.secret = "another-secret-0123456789abcdefghijkl"
    assert verifier.verify(token).tenant == "acme"  # remembered
    now[0] = expires_at + 0.5
    with pytest.raises(Problem):
        verifier.verify(token)
