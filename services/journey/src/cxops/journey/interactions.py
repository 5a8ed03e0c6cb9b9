"""Interactions in: one or a batch of up to :data:`~cxops.journey.schemas.MAX_BATCH`, each
validated on its own (a bad item is named by its index and field; the good ones are kept),
stored once per ``external_id``, resolved into a customer, and announced.

One transaction per call does it all: it takes the tenant's resolution lock, skips the
``external_id`` values already stored (and repeats within the body), inserts the interactions
and their normalised identifier values, re-resolves the component they touch
(:mod:`cxops.journey.identity_store`) and queues ``interaction.recorded`` for each new
interaction, with the profile it ended in, and ``identities.merged`` for each profile that
absorbed others.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from uuid6 import uuid7

from cxops.common.db import CommitInfo, Database
from cxops.common.errors import validation_errors
from cxops.common.events.outbox import outbox_row, queue_events
from cxops.common.telemetry import outgoing_trace_headers
from cxops.journey import events
from cxops.journey.domain.identity import Identifier
from cxops.journey.identity_store import (
    Spelling,
    interaction_identifiers,
    interactions,
    lock_tenant,
    resolve_around,
)
from cxops.journey.schemas import (
    BatchResult,
    InteractionIn,
    InteractionOutcome,
    ItemError,
)

_ITEM = TypeAdapter(InteractionIn)


@dataclass(frozen=True, slots=True)
class _Accepted:
    index: int
    item: InteractionIn


def check(items: Sequence[Any]) -> tuple[list[_Accepted], list[InteractionOutcome]]:
    """Validate each item alone: the valid ones, and an outcome naming the fields of each bad
    one (``[3].occurred_at``)."""
    accepted, rejected = [], []
    for index, raw in enumerate(items):
        try:
            accepted.append(_Accepted(index, _ITEM.validate_python(raw)))
        except ValidationError as exc:
            errors = [
                ItemError(
                    field=f"[{index}].{error['field']}" if error["field"] else f"[{index}]",
                    message=error["message"],
                    code=error["code"],
                )
                for error in validation_errors(list(exc.errors()))
            ]
            external_id = raw.get("external_id") if isinstance(raw, dict) else None
            rejected.append(
                InteractionOutcome(
                    index=index,
                    status="rejected",
                    external_id=external_id if isinstance(external_id, str) else None,
                    errors=errors,
                )
            )
    return accepted, rejected


async def record(
    *,
    db: Database,
    tenant: str,
    accepted: Sequence[_Accepted],
    rejected: Sequence[InteractionOutcome],
    spelling: Spelling,
) -> BatchResult:
    """Store, resolve and announce the accepted items; the outcomes in the body's order."""
    trace = outgoing_trace_headers()
    outcomes: list[InteractionOutcome] = list(rejected)
    if accepted:
        outcomes += await db.run_transaction(
            lambda connection, info: _write(
                connection, info, tenant=tenant, accepted=accepted, spelling=spelling, trace=trace
            )
        )
    outcomes.sort(key=lambda outcome: outcome.index)
    return BatchResult(
        created=sum(outcome.status == "created" for outcome in outcomes),
        duplicates=sum(outcome.status == "duplicate" for outcome in outcomes),
        rejected=len(rejected),
        items=outcomes,
    )


def _write(
    connection: sa.Connection,
    info: CommitInfo,
    *,
    tenant: str,
    accepted: Sequence[_Accepted],
    spelling: Spelling,
    trace: dict[str, str],
) -> list[InteractionOutcome]:
    now = datetime.now(UTC)
    lock_tenant(connection, tenant)
    stored = _stored(connection, tenant, {entry.item.external_id for entry in accepted})
    outcomes: list[InteractionOutcome] = []
    fresh: list[tuple[_Accepted, uuid.UUID]] = []
    for entry in accepted:
        earlier = stored.get(entry.item.external_id)
        if earlier is not None:
            outcomes.append(_duplicate(entry, earlier))
            continue
        new_id: uuid.UUID = uuid7()
        stored[entry.item.external_id] = (new_id, None)
        fresh.append((entry, new_id))
    if not fresh:
        return outcomes
    seeds = _insert(connection, tenant, fresh, spelling, received_at=now)
    reassigned = resolve_around(connection, tenant=tenant, seeds=seeds, spelling=spelling, now=now)
    rows = []
    for entry, interaction_id in fresh:
        customer_id = reassigned.customer_of.get(str(interaction_id))
        outcomes.append(
            InteractionOutcome(
                index=entry.index,
                status="created",
                external_id=entry.item.external_id,
                id=interaction_id,
                customer_id=customer_id,
            )
        )
        rows.append(
            outbox_row(
                events.journey_event(
                    events.INTERACTION_RECORDED,
                    tenant=tenant,
                    trace=trace,
                    interaction_id=interaction_id,
                    customer_id=customer_id,
                    received_at=now,
                    **entry.item.model_dump(),
                )
            )
        )
    # Each merged profile's first new interaction: the one that linked it.
    linking: dict[str, uuid.UUID] = {}
    for _, interaction_id in fresh:
        profile = reassigned.customer_of.get(str(interaction_id))
        if profile is not None:
            linking.setdefault(profile, interaction_id)
    for customer_id, (ceased, linked_by) in sorted(reassigned.merged.items()):
        rows.append(
            outbox_row(
                events.journey_event(
                    events.IDENTITIES_MERGED,
                    tenant=tenant,
                    trace=trace,
                    customer_id=customer_id,
                    merged=ceased,
                    linked_by=linked_by,
                    interaction_id=linking.get(customer_id),
                    merged_at=now,
                )
            )
        )
    queue_events(connection, info, rows)
    return outcomes


def _stored(
    connection: sa.Connection, tenant: str, external_ids: set[str]
) -> dict[str, tuple[uuid.UUID, str | None]]:
    found: dict[str, tuple[uuid.UUID, str | None]] = {}
    ordered = sorted(external_ids)
    for start in range(0, len(ordered), 500):
        rows = connection.execute(
            sa.select(interactions.c.external_id, interactions.c.id, interactions.c.customer_id)
            .where(interactions.c.tenant == tenant)
            .where(interactions.c.external_id.in_(ordered[start : start + 500]))
        )
        found.update({external_id: (key, customer) for external_id, key, customer in rows})
    return found


def _duplicate(entry: _Accepted, earlier: tuple[uuid.UUID, str | None]) -> InteractionOutcome:
    return InteractionOutcome(
        index=entry.index,
        status="duplicate",
        external_id=entry.item.external_id,
        id=earlier[0],
        customer_id=earlier[1],
    )


def _insert(
    connection: sa.Connection,
    tenant: str,
    fresh: Sequence[tuple[_Accepted, uuid.UUID]],
    spelling: Spelling,
    *,
    received_at: datetime,
) -> set[Identifier]:
    """Insert the new interactions and their normalised values; the values."""
    rows, values = [], []
    seeds: set[Identifier] = set()
    for entry, interaction_id in fresh:
        item = entry.item
        rows.append(
            {
                "id": interaction_id,
                "tenant": tenant,
                "external_id": item.external_id,
                "occurred_at": item.occurred_at,
                "received_at": received_at,
                "channel": item.channel,
                "activity": item.activity,
                "team": item.team,
                "stage": item.stage,
                "identifiers": item.identifiers,
                "attributes": item.attributes,
                "customer_id": None,
            }
        )
        normalised = {
            identifier
            for type_name, raw in item.identifiers.items()
            if (identifier := spelling.normalise(type_name, raw)) is not None
        }
        seeds |= normalised
        values += [
            {
                "interaction_id": interaction_id,
                "type": identifier.type,
                "value": identifier.value,
                "tenant": tenant,
            }
            for identifier in normalised
        ]
    connection.execute(sa.insert(interactions), rows)
    if values:
        connection.execute(sa.insert(interaction_identifiers), values)
    return seeds
