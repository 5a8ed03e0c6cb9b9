"""Resolved customers: read one, find one by an identifier value, and split a wrong merge."""

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from uuid6 import uuid7

from cxops.common.db import Database
from cxops.common.tenancy import TenantRepository
from cxops.journey.domain.identifiers import Kind
from cxops.journey.domain.identity import Identifier
from cxops.journey.identity_store import Spelling, lock_tenant, resolve_around, splits
from cxops.journey.models import (
    Customer,
    CustomerAlias,
    CustomerIdentifier,
    IdentitySplit,
    Interaction,
    InteractionIdentifier,
)
from cxops.journey.schemas import CustomerPublic, IdentifierIn, SplitPublic, SplitResult

#: Profiles a lookup by a value no profile owns (a shared inbox) lists at most.
MAX_SHARING = 50
#: An identifier type as a lookup names it: ``phone``, ``crm_id``.
_IDENTIFIER_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class CustomerNotFound(LookupError):
    pass


class SplitRefused(ValueError):
    """A split that names a value the profile does not hold, or all of them."""


class CustomerRepository(TenantRepository):
    async def get(self, customer_id: str) -> Customer | None:
        found: Customer | None = await self.session.scalar(
            self.select(Customer).where(col(Customer.id) == customer_id)
        )
        return found

    async def now_named(self, customer_id: str) -> str | None:
        """The profile holding a ceased profile's interactions, if ``customer_id`` ceased."""
        current: str | None = await self.session.scalar(
            self.select(CustomerAlias.customer_id).where(col(CustomerAlias.id) == customer_id)
        )
        return current

    async def get_many(self, customer_ids: Sequence[str]) -> list[Customer]:
        rows = await self.session.scalars(
            self.select(Customer)
            .where(col(Customer.id).in_(customer_ids))
            .order_by(col(Customer.id))
        )
        return list(rows)

    async def owner_of(self, identifier: Identifier) -> str | None:
        owner: str | None = await self.session.scalar(
            self.select(CustomerIdentifier.customer_id)
            .where(col(CustomerIdentifier.type) == identifier.type)
            .where(col(CustomerIdentifier.value) == identifier.value)
        )
        return owner

    async def sharing(self, identifier: Identifier) -> list[str]:
        """The profiles of interactions carrying a value no profile owns."""
        carrying = self.scoped(
            sa.select(Interaction.customer_id)  # type: ignore[call-overload]
            .join(
                InteractionIdentifier,
                col(InteractionIdentifier.interaction_id) == col(Interaction.id),
            )
            .where(col(InteractionIdentifier.type) == identifier.type)
            .where(col(InteractionIdentifier.value) == identifier.value)
            .where(col(Interaction.customer_id).is_not(None))
            .distinct()
            .order_by(col(Interaction.customer_id))
            .limit(MAX_SHARING)
        )
        return [row for row in await self.session.scalars(carrying) if row is not None]

    async def splits_of(self, customer_ids: Sequence[str]) -> list[IdentitySplit]:
        rows = await self.session.scalars(
            self.select(IdentitySplit)
            .where(col(IdentitySplit.customer_id).in_(customer_ids))
            .order_by(col(IdentitySplit.created_at))
        )
        return list(rows)


async def get_customer(session: AsyncSession, *, tenant: str, customer_id: str) -> CustomerPublic:
    """The profile, also by the id of one that joined it (the answer's ``id`` is the current)."""
    repository = CustomerRepository(session, tenant=tenant)
    found = await repository.get(customer_id)
    if found is None and (current := await repository.now_named(customer_id)) is not None:
        found = await repository.get(current)
    if found is None:
        raise CustomerNotFound(customer_id)
    return (await _public(repository, [found]))[0]


async def find_customers(
    session: AsyncSession, *, tenant: str, identifier: Identifier
) -> list[CustomerPublic]:
    """The profile holding ``identifier``; for a value no profile holds (blocked: a shared
    inbox, a placeholder), the profiles of the interactions that carried it."""
    repository = CustomerRepository(session, tenant=tenant)
    owner = await repository.owner_of(identifier)
    ids = [owner] if owner is not None else await repository.sharing(identifier)
    return await _public(repository, await repository.get_many(ids)) if ids else []


async def _public(repository: CustomerRepository, found: list[Customer]) -> list[CustomerPublic]:
    splits_by_customer: dict[str, list[SplitPublic]] = {}
    for split in await repository.splits_of([customer.id for customer in found]):
        splits_by_customer.setdefault(split.customer_id, []).append(_split(split))
    return [
        CustomerPublic.model_validate(
            {**customer.model_dump(), "splits": splits_by_customer.get(customer.id, [])}
        )
        for customer in found
    ]


def parse_identifier(text: str, spelling: Spelling) -> Identifier | None:
    """``type:value`` normalised as resolution normalises it under ``spelling`` (the service's
    country code included): ``phone:+34 600 111 222`` is ``phone`` ``+34600111222``; None when
    it cannot be one. A phone number's leading space is its ``+``: a query string typed as is
    (``?identifier=phone:+34...``) reads the ``+`` as a space."""
    type_name, colon, raw = text.partition(":")
    if not colon or not _IDENTIFIER_TYPE.fullmatch(type_name):
        return None
    if spelling.rules.kind(type_name) is Kind.PHONE and raw.startswith(" "):
        raw = "+" + raw[1:]
    return spelling.normalise(type_name, raw)


async def split_customer(
    db: Database,
    *,
    tenant: str,
    customer_id: str,
    identifiers: Sequence[IdentifierIn],
    reason: str | None,
    by: str,
    spelling: Spelling,
) -> SplitResult:
    """Keep ``identifiers`` apart from the rest of the profile, now and for every later
    interaction; the profiles the component resolves into afterwards."""

    def work(connection: sa.Connection, info: Any) -> tuple[uuid.UUID, list[str]]:
        now = datetime.now(UTC)
        lock_tenant(connection, tenant)
        held = _held(connection, tenant, customer_id)
        if held is None:
            raise CustomerNotFound(customer_id)
        left = _named(identifiers, spelling)
        if not left <= held:
            missing = ", ".join(f"{i.type}:{i.value}" for i in sorted(left - held))
            raise SplitRefused(f"the profile does not hold {missing}")
        right = held - left
        if not right:
            raise SplitRefused("name some of the profile's identifiers, not all of them")
        split_id = uuid7()
        connection.execute(
            sa.insert(splits).values(
                id=split_id,
                tenant=tenant,
                customer_id=customer_id,
                left=[_as_dict(i) for i in sorted(left)],
                right=[_as_dict(i) for i in sorted(right)],
                reason=reason,
                by=by,
                created_at=now,
            )
        )
        reassigned = resolve_around(
            connection, tenant=tenant, seeds=held, spelling=spelling, now=now
        )
        return split_id, reassigned.profiles

    split_id, profiles = await db.run_transaction(work)
    async with db.transaction() as session:
        repository = CustomerRepository(session, tenant=tenant)
        split = await session.scalar(
            repository.select(IdentitySplit).where(col(IdentitySplit.id) == split_id)
        )
        assert split is not None
        return SplitResult(
            split=_split(split),
            customers=await _public(repository, await repository.get_many(profiles)),
        )


def _held(connection: sa.Connection, tenant: str, customer_id: str) -> set[Identifier] | None:
    row = connection.execute(
        sa.select(Customer.identifiers)  # type: ignore[call-overload]
        .where(col(Customer.tenant) == tenant)
        .where(col(Customer.id) == customer_id)
    ).first()
    if row is None:
        return None
    return {Identifier(item["type"], item["value"]) for item in row[0]}


def _named(identifiers: Sequence[IdentifierIn], spelling: Spelling) -> set[Identifier]:
    named = set()
    for index, given in enumerate(identifiers):
        identifier = spelling.normalise(given.type, given.value)
        if identifier is None:
            raise SplitRefused(f"identifiers[{index}] is not a valid {given.type}")
        named.add(identifier)
    return named


def _as_dict(identifier: Identifier) -> dict[str, str]:
    return {"type": identifier.type, "value": identifier.value}


def _split(split: IdentitySplit) -> SplitPublic:
    return SplitPublic.model_validate(split.model_dump())
