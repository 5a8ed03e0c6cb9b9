"""Scorecard's queries. Reads are one tenant's, built by the tenant-scoped repository base, so
there is no way to ask for another tenant's figures by accident; facts arrive from events of
every tenant, each row stamped with its own."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.tenancy import TenantRepository
from cxops.scorecard.models import ResponseFact
from cxops.stats.scales import SurveyKind

_UNIQUE_RESPONSE = ["tenant", "response_id"]


async def insert_facts_unless_known(
    *, session: AsyncSession, facts: Sequence[dict[str, Any]]
) -> int:
    """Insert ``facts`` (rows of :class:`ResponseFact`), skipping any whose tenant already has a
    fact for its response; returns how many were inserted.

    ``INSERT … ON CONFLICT DO NOTHING`` rather than catching the unique violation: the consumer's
    transaction (which also writes the inbox) stays valid, and two replicas racing on the same
    response cannot fail each other. One statement for all of them (executemany).
    """
    if not facts:
        return 0
    table = ResponseFact.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    statement: sa.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=_UNIQUE_RESPONSE)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=_UNIQUE_RESPONSE)
    else:  # pragma: no cover - cxops runs on SQLite and PostgreSQL only
        raise NotImplementedError(f"no conflict-tolerant insert for {dialect}")
    # RETURNING, not rowcount: drivers report no row count for an executemany.
    inserted = await session.execute(statement.returning(table.c.id), list(facts))
    return len(inserted.all())


class FactRepository(TenantRepository):
    """One tenant's metric facts."""

    async def score_counts(
        self,
        *,
        metric: SurveyKind,
        occurred_from: datetime | None,
        occurred_to: datetime | None,
    ) -> dict[int, int]:
        """How many of the tenant's answers for ``metric`` gave each score, over answers given
        in ``[occurred_from, occurred_to)``; the database counts, at most one row a score."""
        query = (
            self.select(col(ResponseFact.score), sa.func.count())
            .where(col(ResponseFact.metric) == metric)
            .group_by(col(ResponseFact.score))
        )
        if occurred_from is not None:
            query = query.where(col(ResponseFact.occurred_at) >= occurred_from)
        if occurred_to is not None:
            query = query.where(col(ResponseFact.occurred_at) < occurred_to)
        rows = (await self.session.execute(query)).all()
        return {int(score): int(count) for score, count in rows}
