"""What intake reads of a tenant for every answer (its taxonomy, case rules, alert rules), kept
in memory for a few seconds: a dictionary look-up costs nothing next to a query.

A change made through this process replaces its entry at once (:meth:`TenantCache.put`, or
:meth:`TenantCache.forget` to re-read it); the other replicas see it within ``ttl_seconds``.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.db import Database

T = TypeVar("T")


class TenantCache(Generic[T]):
    """Each tenant's ``read(session, tenant)``, re-read at most every ``ttl_seconds`` (a
    service component)."""

    def __init__(
        self,
        db: Database,
        read: Callable[[AsyncSession, str], Awaitable[T]],
        *,
        ttl_seconds: float,
    ) -> None:
        self._db = db
        self._read = read
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, T]] = {}

    async def start(self) -> None:
        """Nothing to load ahead: tenants are read on first use."""

    async def stop(self) -> None:
        self._entries.clear()

    async def get(self, tenant: str) -> T:
        entry = self._entries.get(tenant)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        async with self._db.sessionmaker() as session:
            value = await self._read(session, tenant)
        self.put(tenant, value)
        return value

    def put(self, tenant: str, value: T) -> None:
        self._entries[tenant] = (time.monotonic() + self._ttl, value)

    def forget(self, tenant: str) -> None:
        self._entries.pop(tenant, None)
