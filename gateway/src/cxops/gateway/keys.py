"""API keys: their format, how they are stored, managed and verified on every request.

A key reads ``cxk_<prefix>_<secret>``: ``prefix`` is 8 public characters (shown in listings, and
the database lookup), ``secret`` is 32 random bytes. Only ``sha256(key)`` is stored.

Why a plain SHA-256 rather than a slow password hash or an HMAC: the key has 256 bits of entropy,
so a stolen hash cannot be brute-forced whatever the speed of the hash, and verifying one costs
about a microsecond on a path that every request takes. An HMAC keyed with the signing secret would
only add protection if the database leaked without the secret, and would tie every API key to
the internal-token secret: rotating that secret would silently invalidate every customer's key.

Verification keeps a short-TTL cache by prefix (see :class:`KeyVerifier`), so most requests never
reach the database; a revocation through this process invalidates the entry at once.
"""

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import uuid6
from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.auth import CallerContext, Role
from cxops.common.db import Database
from cxops.common.tenancy import TenantRepository
from cxops.gateway.models import ApiKey

log = logging.getLogger("cxops.gateway.keys")
_T = TypeVar("_T")

KEY_SCHEME = "cxk"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_KEY_PATTERN = re.compile(rf"^{KEY_SCHEME}_([a-z2-7]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})$")

#: ``last_used_at`` is written at most this often per key: it is for humans, not for billing.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidTenant(ValueError):
    """A tenant must be a slug: lowercase letters, digits and hyphens, at most 64 characters."""


class KeyNotFound(LookupError):
    """No such key (or not in the caller's tenant)."""


class AgentBindingNotAllowed(ValueError):
    """Only a key of role ``agent`` may be bound to a routing agent (``agent_id``)."""


class ApiKeyRecord(BaseModel):
    """What may be shown about a key: never its hash, never its plaintext."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: uuid.UUID
    prefix: str
    tenant: str
    role: Role
    name: str
    #: The routing agent an ``agent``-role key is bound to; None for an unbound key.
    agent_id: uuid.UUID | None = None
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def validate_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidTenant(
            f"tenant {tenant!r} is not a slug: use lowercase letters, digits and '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    return tenant


def check_agent_binding(*, role: Role | str, agent_id: uuid.UUID | None) -> None:
    """A key may be bound to a routing agent only if its role is ``agent``.

    An ``agent`` key without a binding stays valid: it reads what its role may read, but cannot
    act on an agent's offers (``cxops.common.auth.acting_agent``). An agent-desktop integration
    acting for many agents is given role ``integration`` instead.
    """
    if agent_id is not None and Role(role) is not Role.AGENT:
        raise AgentBindingNotAllowed(
            f"agent_id may be set only for role 'agent', not '{Role(role).value}'"
        )


def generate_key() -> tuple[str, str]:
    """A new plaintext key and its public prefix."""
    prefix = base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{KEY_SCHEME}_{prefix}_{secret}", prefix


def parse_key(key: str) -> str | None:
    """The prefix of a well-formed key, or None: a malformed key never reaches the database."""
    match = _KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


async def create_key(
    session: AsyncSession,
    *,
    tenant: str,
    role: Role | str,
    name: str,
    agent_id: uuid.UUID | str | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Create a key; returns its record and the plaintext, which is never stored or shown again.

    ``agent_id`` binds a key of role ``agent`` to that routing agent (see
    :func:`check_agent_binding`); it is not checked against the routing service, which owns the
    agents: a key bound to an agent that does not exist acts on nothing. The caller's
    transaction commits it (``async with db.transaction() as session``).
    """
    validate_tenant(tenant)
    role = Role(role)
    if isinstance(agent_id, str):
        try:
            agent_id = uuid.UUID(agent_id)
        except ValueError as exc:
            raise ValueError(f"agent_id {agent_id!r} is not a UUID") from exc
    check_agent_binding(role=role, agent_id=agent_id)
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("a key's name has 1 to 200 characters")
    for _ in range(5):
        plaintext, prefix = generate_key()
        # Prefixes are unique across tenants: the prefix is how a presented key is found.
        taken = await session.scalar(
            select(col(ApiKey.id))
            .where(col(ApiKey.prefix) == prefix)
            .execution_options(all_tenants=True)
        )
        if taken is None:
            break
    else:  # 40 random bits colliding five times: something is wrong with the RNG
        raise RuntimeError("could not draw an unused key prefix")
    row = ApiKey(
        id=uuid6.uuid7(),
        prefix=prefix,
        key_hash=hash_key(plaintext),
        tenant=tenant,
        role=role.value,
        name=name,
        agent_id=agent_id,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    await session.flush()
    return ApiKeyRecord.model_validate(row), plaintext


async def list_keys(session: AsyncSession, *, tenant: str | None = None) -> list[ApiKeyRecord]:
    """Every key (of one tenant when given), revoked ones included, oldest first. Without a
    tenant (``cxops keys list``, an operator's command), every tenant's."""
    if tenant is None:
        query = select(ApiKey).execution_options(all_tenants=True)
    else:
        query = TenantRepository(session, tenant=tenant).select(ApiKey)
    rows = (await session.scalars(query.order_by(col(ApiKey.created_at), col(ApiKey.id)))).all()
    return [ApiKeyRecord.model_validate(row) for row in rows]


async def revoke_key(
    session: AsyncSession, *, key_id: uuid.UUID | str, tenant: str | None = None
) -> ApiKeyRecord:
    """Revoke a key (idempotent: a revoked key keeps its first revocation time).

    With ``tenant``, a key of another tenant is reported as not found. Gateways that cached the key
    stop accepting it within ``key_cache_ttl_seconds``; the gateway's own ``DELETE /v1/keys/{id}``
    also drops its cache entry at once.
    """
    try:
        key_uuid = key_id if isinstance(key_id, uuid.UUID) else uuid.UUID(str(key_id))
    except ValueError as exc:
        raise KeyNotFound(f"no key {key_id!r}") from exc
    if tenant is None:  # ``cxops keys revoke``, an operator's command: any tenant's key
        query = select(ApiKey).execution_options(all_tenants=True)
    else:
        query = TenantRepository(session, tenant=tenant).select(ApiKey)
    row = await session.scalar(query.where(col(ApiKey.id) == key_uuid))
    if row is None:
        raise KeyNotFound(f"no key {key_uuid}")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await session.flush()
    return ApiKeyRecord.model_validate(row)


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """A key that matched: who calls, for the rate limiter, the internal token and the audit."""

    id: uuid.UUID
    prefix: str
    tenant: str
    role: Role
    agent_id: uuid.UUID | None = None

    def caller(self) -> CallerContext:
        return CallerContext(
            tenant=self.tenant,
            role=self.role,
            subject=str(self.id),
            agent_id=None if self.agent_id is None else str(self.agent_id),
        )


@dataclass(slots=True)
class _CachedKey:
    key_hash: str
    key: VerifiedKey
    revoked: bool
    expires_at: float
    #: As this process last wrote or read it; moved forward before the write, so that
    #: concurrent requests with the same key do not all write it.
    last_used_at: datetime | None


class KeyRejected(Exception):
    """The key is malformed, unknown or revoked; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyVerifier:
    """Checks a presented key against the database, through a small cache.

    The cache is keyed by the public prefix and holds the stored hash, so a wrong secret for a
    known prefix is refused without a query, and revoked keys are cached as revoked. Bounds:
    an entry lives ``ttl_seconds``; :meth:`invalidate` (called after a revocation commits) drops it
    and makes any lookup already in flight discard its now possibly stale result.

    Prefixes the database does not know are remembered too, for ``negative_ttl_seconds``, so a
    stream of requests with one unknown key costs one query, not one each. A key created
    through this process is never refused because of it (creating one invalidates its prefix);
    one created elsewhere whose prefix had just been tried (by chance: prefixes are random)
    works within that bound. Both caches hold at most ``max_entries``, the oldest going first.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int,
        negative_ttl_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.negative_ttl_seconds = negative_ttl_seconds
        self.clock = clock
        self.db: Database | None = None
        self._cache: dict[str, _CachedKey] = {}
        self._unknown: dict[str, float] = {}  # prefix -> until when it is taken as unknown
        self._inflight: dict[str, asyncio.Future[_CachedKey | None]] = {}
        self._epoch = 0

    async def verify(self, key: str) -> VerifiedKey:
        """The key's identity, or :class:`KeyRejected`. Database errors propagate."""
        prefix = parse_key(key)
        if prefix is None:
            raise KeyRejected("The API key is malformed.")
        digest = hash_key(key)
        now = self.clock()
        entry = self._cache.get(prefix)
        if entry is None or entry.expires_at <= now:
            if self._unknown.get(prefix, now) > now:
                raise KeyRejected("The API key is not valid.")
            entry = await self._load(prefix)
        if entry is None or not hmac.compare_digest(entry.key_hash, digest):
            raise KeyRejected("The API key is not valid.")
        if entry.revoked:
            raise KeyRejected("The API key has been revoked.")
        await self._record_use(entry)
        return entry.key

    def invalidate(self, prefix: str | None = None) -> None:
        """Forget one key (or all), known or unknown: the next request with it asks the
        database."""
        self._epoch += 1
        if prefix is None:
            self._cache.clear()
            self._unknown.clear()
        else:
            self._cache.pop(prefix, None)
            self._unknown.pop(prefix, None)

    async def _load(self, prefix: str) -> _CachedKey | None:
        """One query per prefix at a time: concurrent requests with a cold key share it."""
        pending = self._inflight.get(prefix)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_CachedKey | None] = asyncio.get_running_loop().create_future()
        self._inflight[prefix] = future
        epoch = self._epoch
        try:
            entry = await self._fetch(prefix)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved here; waiters get it from await
            else:
                future.cancel()
            raise
        finally:
            del self._inflight[prefix]
        future.set_result(entry)
        if epoch != self._epoch:
            return entry
        if entry is None:
            if self.negative_ttl_seconds > 0:
                self._remember(self._unknown, prefix, self.clock() + self.negative_ttl_seconds)
        elif self.ttl_seconds > 0:
            self._remember(self._cache, prefix, entry)
        return entry

    def _remember(self, cache: dict[str, _T], prefix: str, value: _T) -> None:
        """Store at the end (entries expire in insertion order); evict the oldest when full."""
        cache.pop(prefix, None)
        if len(cache) >= self.max_entries:
            cache.pop(next(iter(cache)))
        cache[prefix] = value

    async def _fetch(self, prefix: str) -> _CachedKey | None:
        """Reads only: the prefix is public, so a lookup proves nothing about the caller."""
        if self.db is None:
            raise RuntimeError("the key verifier has no database yet (gateway not started)")
        async with self.db.transaction() as session:
            # Across tenants by design: the key, found by its prefix, is what names the tenant.
            row = await session.scalar(
                select(ApiKey)
                .where(col(ApiKey.prefix) == prefix)
                .execution_options(all_tenants=True)
            )
            if row is None:
                return None
            return _CachedKey(
                key_hash=row.key_hash,
                key=VerifiedKey(
                    id=row.id,
                    prefix=row.prefix,
                    tenant=row.tenant,
                    role=Role(row.role),
                    agent_id=row.agent_id,
                ),
                revoked=row.revoked_at is not None,
                expires_at=self.clock() + self.ttl_seconds,
                last_used_at=row.last_used_at,
            )

    async def _record_use(self, entry: _CachedKey) -> None:
        """Move ``last_used_at`` of a key whose hash matched, at most once a resolution.

        A failure is logged, not raised: the key is valid, and the time is for humans.
        """
        now = datetime.now(UTC)
        last = entry.last_used_at
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        entry.last_used_at = now
        if self.db is None:
            return
        columns = ApiKey.__table__.c  # type: ignore[attr-defined]
        try:
            async with self.db.transaction() as session:
                await session.execute(
                    TenantRepository(session, tenant=entry.key.tenant)
                    .update(ApiKey)
                    .where(columns.id == entry.key.id)
                    .where(
                        or_(
                            columns.last_used_at.is_(None),
                            columns.last_used_at <= now - LAST_USED_RESOLUTION,
                        )
                    )
                    .values(last_used_at=now)
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("last_used_at of key %s not written (%r)", entry.key.prefix, exc)
