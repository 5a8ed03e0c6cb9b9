"""The gateway's short-lived internal token, and the role guards services put on endpoints.

The gateway turns an API key into a signed token (HS256) carrying tenant, role and subject (and,
for a key bound to a routing agent, that agent's id); a service trusts only that token, so a
service reached without the gateway still refuses the call.
"""

import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

import jwt
from fastapi import Depends, Request

from cxops.common.errors import Problem
from cxops.common.telemetry import bind_tenant

INTERNAL_TOKEN_HEADER = "X-Cxops-Internal-Token"
ISSUER = "cxops-gateway"
AUDIENCE = "cxops-services"
ALGORITHM = "HS256"

log = logging.getLogger("cxops.auth")


class Role(StrEnum):
    ADMIN = "admin"
    INTEGRATION = "integration"
    OPS_LEAD = "ops_lead"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class CallerContext:
    """Who is calling: the tenant every query is scoped to, the role guards check, the key id.

    ``agent_id`` is the routing agent (its id, a UUID string) an ``agent``-role key is bound to,
    carried in the internal token as the claim ``agent``; None for an unbound key. What it
    allows is decided by :func:`acting_agent`.
    """

    tenant: str
    role: Role
    subject: str
    agent_id: str | None = None


def mint_internal_token(caller: CallerContext, *, secret: str, ttl_seconds: int = 60) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": caller.subject,
        "tenant": caller.tenant,
        "role": caller.role.value,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if caller.agent_id is not None:
        claims["agent"] = caller.agent_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_internal_token(token: str, *, secret: str) -> CallerContext:
    """Raise :class:`Problem` 401 for anything but a valid, unexpired token from the gateway."""
    return _verify(token, secret=secret)[0]


def _verify(token: str, *, secret: str) -> tuple[CallerContext, float]:
    """The caller a valid token stands for, and the time (epoch seconds) it expires."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            leeway=5,
        )
        agent = claims.get("agent")
        if agent is not None and not isinstance(agent, str):
            raise ValueError("the claim 'agent' is not a string")
        caller = CallerContext(
            tenant=str(claims["tenant"]),
            role=Role(claims["role"]),
            subject=str(claims["sub"]),
            agent_id=agent,
        )
        return caller, float(claims["exp"])
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        log.info("internal token refused: %s", exc)
        raise Problem(
            401,
            "The internal token is invalid or expired.",
            slug="unauthenticated",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


class InternalTokenVerifier:
    """Verifies internal tokens, remembering each verified token until it expires.

    The gateway reuses one token per key for half its lifetime, so a busy service sees the same
    few tokens thousands of times; the HMAC and JSON work (~40 µs) is done once per token. Only
    a token that verified is remembered, keyed by its full text, and never past its ``exp``.
    """

    def __init__(
        self, secret: str, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.max_entries = max_entries
        self.clock = clock
        self._verified: dict[str, tuple[CallerContext, float]] = {}

    def verify(self, token: str) -> CallerContext:
        cached = self._verified.get(token)
        if cached is not None:
            if cached[1] > self.clock():
                return cached[0]
            del self._verified[token]
        caller, expires_at = _verify(token, secret=self.secret)
        if len(self._verified) >= self.max_entries:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (caller, expires_at)
        return caller


class HoldsTokenVerifier(Protocol):
    """What an app's state offers for :func:`current_caller`."""

    @property
    def tokens(self) -> InternalTokenVerifier: ...


def _unauthenticated() -> Problem:
    return Problem(
        401,
        "This service is reached through the gateway; the internal token is missing.",
        slug="unauthenticated",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_caller(request: Request) -> CallerContext:
    """FastAPI dependency: the verified caller, checked by the app state's token verifier."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not token:
        raise _unauthenticated()
    state: HoldsTokenVerifier = request.app.state.cxops
    caller = state.tokens.verify(token)
    bind_tenant(caller.tenant)
    return caller


def require_role(
    *roles: Role,
    caller_from: Callable[..., Coroutine[Any, Any, CallerContext]] = current_caller,
) -> Callable[..., Coroutine[Any, Any, CallerContext]]:
    """A dependency that lets ``admin`` and the given roles through, and answers 403 otherwise.

    ``caller_from`` says who is calling: the internal token in a service, the API key in the
    gateway; the rule is the same everywhere."""
    allowed = frozenset((Role.ADMIN, *roles))

    async def guard(caller: Annotated[CallerContext, Depends(caller_from)]) -> CallerContext:
        if caller.role not in allowed:
            raise Problem(
                403,
                f"Role '{caller.role.value}' may not do this; "
                f"allowed: {', '.join(sorted(r.value for r in allowed))}",
                slug="forbidden",
            )
        return caller

    return guard


def acting_agent(caller: CallerContext) -> str | None:
    """The agent the caller may act as on offers and tasks: for role ``agent``, the routing agent
    its key is bound to, and only that one; for every other role None (an ``admin``,
    ``integration`` or ``supervisor`` key may act for any agent of its tenant).

    An ``agent``-role key without a binding is still a valid key (it reads what its role may
    read), but it cannot act on an agent's stream: 403. An agent-desktop integration that acts
    for many agents is given role ``integration`` instead of one unbound ``agent`` key.
    """
    if caller.role is not Role.AGENT:
        return None
    if caller.agent_id is None:
        raise Problem(
            403,
            "an agent key must be bound to an agent (agent_id) to act on offers",
            slug="forbidden",
        )
    return caller.agent_id


Caller = Annotated[CallerContext, Depends(current_caller)]
