"""Tenant scoping in one place: the repository base that filters every statement by its tenant,
and the guard that refuses any statement on a tenant's table that is not filtered.

A table is *tenant-owned* when it has a ``tenant`` column. A repository built on
:class:`TenantRepository` starts every read, update and delete from its ``select``, ``update``
or ``delete``, which add ``<table>.tenant = <the caller's tenant>`` for each tenant-owned table
the statement reads; no query writes that filter by hand.

:func:`install_tenant_guard` watches everything an engine executes. A SELECT, UPDATE or DELETE
that reads a tenant-owned table without an equality on that table's ``tenant`` column raises
:class:`TenantScopeMissing` before it reaches the database: a forgotten filter is an error in
the tests (and, should one ever slip through, a 500 rather than another tenant's rows). Work that
really spans tenants (retention, say) says so with ``.execution_options(all_tenants=True)``; the
outbox and inbox tables are plumbing that every tenant's events pass through, and say so in their
``Table.info``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    ColumnElement,
)
from sqlalchemy.util import LRUCache

from cxops.common.db import Database

TENANT_COLUMN = "tenant"
#: The execution option that marks a statement as deliberately spanning tenants.
ALL_TENANTS = "all_tenants"
#: The ``Table.info`` key of a table that carries a tenant but is read across tenants by design.
SPANS_TENANTS = "spans_tenants"
#: The execution option the ORM's flush (and only it) passes with its UPDATEs and DELETEs.
_ORM_FLUSH = "compiled_cache"


class TenantScopeMissing(RuntimeError):
    """A statement reads a tenant-owned table without filtering by tenant."""


def is_tenant_owned(table: sa.FromClause) -> bool:
    """A table with a ``tenant`` column, unless it declares ``info={SPANS_TENANTS: True}``
    (the outbox and inbox: plumbing every tenant's events pass through)."""
    return (
        isinstance(table, sa.Table)
        and TENANT_COLUMN in table.c
        and not table.info.get(SPANS_TENANTS, False)
    )


class TenantRepository:
    """The base of a service's repositories: one tenant's view of the database.

    ``session`` is the caller's (the request's unit of work, a consumer's transaction); the
    repository never commits.
    """

    def __init__(self, session: AsyncSession, *, tenant: str) -> None:
        self.session = session
        self.tenant = tenant

    def scoped(self, statement: Any) -> Any:
        """``statement`` filtered by this tenant on every tenant-owned table it reads."""
        return self._filtered(statement, _sources(statement))

    def select(self, *entities: Any) -> sa.Select[Any]:
        """A SELECT of ``entities`` filtered by tenant. Its tables are those of its columns,
        known without the compilation that finding a finished statement's sources costs (a
        millisecond for an ORM entity: more than many of the queries themselves)."""
        statement = sa.select(*entities)
        return self._filtered(statement, statement.columns_clause_froms)  # type: ignore[no-any-return]

    def _filtered(self, statement: Any, sources: Iterable[Any]) -> Any:
        for source in sources:
            if is_tenant_owned(_table_of(source)):
                statement = statement.where(source.c[TENANT_COLUMN] == self.tenant)
        return statement

    def update(self, entity: Any) -> sa.Update:
        return self.scoped(sa.update(entity))  # type: ignore[no-any-return]

    def delete(self, entity: Any) -> sa.Delete:
        return self.scoped(sa.delete(entity))  # type: ignore[no-any-return]


def install_tenant_guard(db: Database) -> None:
    """Refuse, on this database, any statement that reads a tenant-owned table unfiltered."""
    for engine in db.sync_engines:
        event.listen(engine, "before_execute", _check_scoped)


def _check_scoped(
    _conn: Any,
    statement: Any,
    _multiparams: Any,
    _params: Any,
    execution_options: dict[str, Any],
) -> None:
    if not isinstance(statement, sa.Select | sa.Update | sa.Delete):
        return
    if execution_options.get(ALL_TENANTS) or statement.get_execution_options().get(ALL_TENANTS):
        return
    if _ORM_FLUSH in execution_options:
        # The ORM's unit of work writing back, by primary key, rows that a scoped query loaded.
        return
    unscoped = _unscoped_by_shape(statement)
    if unscoped:
        raise TenantScopeMissing(
            f"a statement reads {', '.join(sorted(set(unscoped)))} without filtering by tenant; "
            "build it with TenantRepository, or mark work that spans tenants with "
            f"execution_options({ALL_TENANTS}=True)"
        )


#: Verdicts by statement shape: the check compiles a statement to find its tables, which cost
#: more CPU than running a short indexed query, and a service runs the same few shapes.
_VERDICTS: Any = LRUCache(2000)


def _unscoped_by_shape(statement: Any) -> list[str]:
    """:func:`_unscoped_sources`, remembered per statement shape. Sound because the verdict
    depends on the structure alone (which tables, which column equals a bound value), which is
    what SQLAlchemy's cache key captures; the bound values are not part of it."""
    key = statement._generate_cache_key()
    if key is None:
        return _unscoped_sources(statement)
    verdict: list[str] | None = _VERDICTS.get(key.key)
    if verdict is None:
        verdict = _VERDICTS[key.key] = _unscoped_sources(statement)
    return verdict


def _unscoped_sources(statement: Any) -> list[str]:
    """The tenant-owned tables (or aliases of them) ``statement`` reads without its filter,
    subqueries included, each judged by its own WHERE."""
    unscoped: list[str] = []
    for source in _sources(statement):
        if isinstance(source, sa.Subquery):
            unscoped += _unscoped_sources(source.element)
        elif is_tenant_owned(_table_of(source)) and not _filters_tenant(
            statement.whereclause, source
        ):
            unscoped.append(_table_of(source).name)
    return unscoped


def _sources(statement: Any) -> list[Any]:
    """What ``statement`` reads rows from: tables, aliases of tables and subqueries."""
    if isinstance(statement, sa.Update | sa.Delete):
        return [statement.table]
    found: list[Any] = []

    def walk(from_clause: Any) -> None:
        if isinstance(from_clause, sa.Join):
            walk(from_clause.left)
            walk(from_clause.right)
        elif from_clause not in found:
            found.append(from_clause)

    for from_clause in statement.get_final_froms():
        walk(from_clause)
    return found


def _table_of(source: Any) -> Any:
    """The table behind an alias (``tally.alias()``), or the source itself."""
    if isinstance(source, sa.Alias) and isinstance(source.element, sa.Table):
        return source.element
    return source


def _filters_tenant(where: ColumnElement[Any] | None, source: Any) -> bool:
    """Whether ``where`` requires ``source.tenant = <value>``: one of its top-level ANDed terms
    is that equality (an equality under an OR would not confine the rows)."""
    if where is None:
        return False
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        return any(_filters_tenant(term, source) for term in where.clauses)
    return (
        isinstance(where, BinaryExpression)
        and where.operator is operators.eq
        and _is_tenant_column(where.left, source)
        and isinstance(where.right, BindParameter)
    )


def _is_tenant_column(element: Any, source: Any) -> bool:
    """``element`` is the ``tenant`` column of ``source`` (a table or an alias of one)."""
    column_source = getattr(element, "table", None)
    if getattr(element, "name", None) != TENANT_COLUMN or column_source is None:
        return False
    if column_source is source:
        return True
    # ORM attributes carry annotated copies of their table's columns: compare tables by name.
    return isinstance(source, sa.Table) and getattr(column_source, "name", None) == source.name
