"""Scorecard's queries. Every read takes the tenant: there is no way to ask for another
tenant's figures by accident."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from cxops.scorecard.models import ResponseFact
from cxops.stats.scales import SurveyKind

_UNIQUE_RESPONSE = ["tenant", "response_id"]


async def insert_fact_unless_known(*, session: AsyncSession, fact: ResponseFact) -> bool:
    """Insert ``fact`` unless the tenant already has a fact for its response; ``True`` if it was
    inserted.

    ``INSERT … ON CONFLICT DO NOTHING`` rather than catching the unique violation: the consumer's
    transaction (which also writes the inbox) stays valid, and two replicas racing on the same
    response cannot fail each other.
    """
    values = fact.model_dump()
    dialect = session.get_bind().dialect.name
    statement: sa.Insert
    if dialect == "postgresql":
        statement = (
            postgresql.insert(ResponseFact)
            .values(values)
            .on_conflict_do_nothing(index_elements=_UNIQUE_RESPONSE)
        )
    elif dialect == "sqlite":
        statement = (
            sqlite.insert(ResponseFact)
            .values(values)
            .on_conflict_do_nothing(index_elements=_UNIQUE_RESPONSE)
        )
    else:  # pragma: no cover - cxops runs on SQLite and PostgreSQL only
        raise NotImplementedError(f"no conflict-tolerant insert for {dialect}")
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def score_counts(
    *,
    session: AsyncSession,
    tenant: str,
    metric: SurveyKind,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
) -> dict[int, int]:
    """How many of the tenant's answers for ``metric`` gave each score, over answers given in
    ``[occurred_from, occurred_to)``; the database does the counting, at most one row a score."""
    query = (
        select(col(ResponseFact.score), sa.func.count())
        .where(col(ResponseFact.tenant) == tenant, col(ResponseFact.metric) == metric)
        .group_by(col(ResponseFact.score))
    )
    if occurred_from is not None:
        query = query.where(col(ResponseFact.occurred_at) >= occurred_from)
    if occurred_to is not None:
        query = query.where(col(ResponseFact.occurred_at) < occurred_to)
    rows = (await session.execute(query)).all()
    return {int(score): int(count) for score, count in rows}
