"""Identity resolution as interactions arrive, with the same answer as a batch run over all of
them (:func:`cxops.journey.domain.identity.resolve`) in any order.

Resolution is a function of the set of events, and it decomposes: events that share no
joinable value never influence each other. So an arriving interaction changes only its
*component*, the interactions reachable from its values through values that may join (not
blocked by a rule, not already found too common). That component is read from the store, run
through :func:`resolve` whole, and its profiles are rewritten. Two facts keep this exact:

- A value found too common stays so (the values it is seen with only grow), so it is stored
  and handed to later runs as ``Rules.common``: a component never sees enough of a shared
  inbox's events to find that out again.
- The walk follows values that were joinable *before* this run, so it reaches every event of
  every value this run may newly find common: the run sees them all.

Splits are ``Rules.separations``; they hold for every later run. Each run locks the tenant's
row in ``journey_identity_locks`` first, so concurrent runs of one tenant take turns.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa

from cxops.common.db import insert_if_absent, take_tenant_lock
from cxops.common.tenancy import ALL_TENANTS
from cxops.journey.domain.identifiers import BlockRule, first_rule, normaliser
from cxops.journey.domain.identity import (
    CapRefusal,
    Event,
    Identifier,
    Merge,
    Profile,
    Resolution,
    Rules,
    Separation,
    SeparationRefusal,
    resolve,
)
from cxops.journey.models import (
    CommonValue,
    Customer,
    CustomerAlias,
    CustomerIdentifier,
    IdentityLock,
    IdentitySplit,
    Interaction,
    InteractionIdentifier,
)

interactions = Interaction.__table__  # type: ignore[attr-defined]
interaction_identifiers = InteractionIdentifier.__table__  # type: ignore[attr-defined]
customers = Customer.__table__  # type: ignore[attr-defined]
aliases = CustomerAlias.__table__  # type: ignore[attr-defined]
customer_identifiers = CustomerIdentifier.__table__  # type: ignore[attr-defined]
common_values = CommonValue.__table__  # type: ignore[attr-defined]
splits = IdentitySplit.__table__  # type: ignore[attr-defined]
locks = IdentityLock.__table__  # type: ignore[attr-defined]

T = TypeVar("T")

#: Values per ``IN`` list: well inside SQLite's and PostgreSQL's parameter limits.
CHUNK = 400


@dataclass(slots=True)
class Reassigned:
    """What a run changed: every interaction's profile in the component, each profile that
    absorbed others (``merged[new] = [ceased profiles]``, with the types that linked them), and
    every profile the component now holds."""

    customer_of: dict[str, str | None] = field(default_factory=dict)
    merged: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)


class Spelling:
    """:func:`normalise` and :func:`is_blocked_by_rule` for many values: each type's tests are
    compiled once (a blocklist's patterns cost far more to compile than to run)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._normalisers: dict[str, Callable[[str], str | None]] = {}
        self._tests: dict[str, Callable[[str], BlockRule | None]] = {}

    def normalise(self, type_name: str, raw: str) -> Identifier | None:
        normalise = self._normalisers.get(type_name)
        if normalise is None:
            normalise = self._normalisers[type_name] = normaliser(
                self.rules.kind(type_name), country_code=self.rules.country_code
            )
        value = normalise(raw) if raw.strip() else None
        return None if value is None else Identifier(type_name, value)

    def blocked_by_rule(self, identifier: Identifier) -> bool:
        test = self._tests.get(identifier.type)
        if test is None:
            kind = self.rules.kind(identifier.type)
            self.normalise(identifier.type, "")
            test = self._tests[identifier.type] = first_rule(
                [rule for rule in self.rules.blocklist if rule.applies_to(identifier.type, kind)],
                self._normalisers[identifier.type],
            )
        return test(identifier.value) is not None


def identity_spelling(settings: Any) -> Spelling:
    """The rules resolution runs under (the defaults, with the service's country code), with
    their tests compiled once per process."""
    return _spelling_for(getattr(settings, "identity_country_code", None))


@cache
def _spelling_for(country_code: str | None) -> Spelling:
    return Spelling(Rules(country_code=country_code))


def lock_tenant(connection: sa.Connection, tenant: str) -> None:
    """Take the tenant's resolution lock for the rest of the transaction."""
    take_tenant_lock(connection, locks, tenant)


def resolve_around(
    connection: sa.Connection,
    *,
    tenant: str,
    seeds: Iterable[Identifier],
    spelling: Spelling,
    now: datetime,
) -> Reassigned:
    """Re-resolve the component of ``seeds`` (normalised values of stored interactions) and
    store its profiles; the caller holds the tenant's lock."""
    component = _Component(connection, tenant, spelling)
    component.walk(seeds)
    if not component.interactions:
        return Reassigned()
    separations, split_ids = _separations(connection, tenant, component.values)
    resolution = _resolve(component, spelling.rules, separations)
    _store_common(connection, tenant, resolution, component.common)
    return _rewrite(connection, tenant, component, resolution, split_ids, now)


@dataclass(slots=True)
class _Stored:
    identifiers: dict[str, str]
    occurred_at: datetime
    customer_id: str | None


class _Component:
    """The interactions reachable from some values through joinable values, read in rounds:
    the interactions carrying the frontier's values, then the values those carry."""

    def __init__(self, connection: sa.Connection, tenant: str, spelling: Spelling) -> None:
        self.connection = connection
        self.tenant = tenant
        self.spelling = spelling
        self.values: set[Identifier] = set()
        self.common: dict[Identifier, str] = {}
        self.interactions: dict[str, _Stored] = {}

    def walk(self, seeds: Iterable[Identifier]) -> None:
        frontier = {value for value in seeds if self._joinable(value)}
        while frontier:
            self._note_common(frontier)
            frontier -= self.common.keys()
            self.values |= frontier
            reached = self._load(self._carrying(frontier) - self.interactions.keys())
            frontier = {
                value for value in reached if value not in self.values and self._joinable(value)
            }

    def _joinable(self, value: Identifier) -> bool:
        return value not in self.common and not self.spelling.blocked_by_rule(value)

    def _note_common(self, values: set[Identifier]) -> None:
        for type_name, chunk in _by_type(values):
            rows = self.connection.execute(
                sa.select(common_values.c.value, common_values.c.detail)
                .where(common_values.c.tenant == self.tenant)
                .where(common_values.c.type == type_name)
                .where(common_values.c.value.in_(chunk))
            )
            for value, detail in rows:
                self.common[Identifier(type_name, value)] = detail

    def _carrying(self, values: set[Identifier]) -> set[str]:
        """The interactions carrying one of ``values``."""
        found: set[str] = set()
        for type_name, chunk in _by_type(values):
            rows = self.connection.execute(
                sa.select(interaction_identifiers.c.interaction_id)
                .where(interaction_identifiers.c.tenant == self.tenant)
                .where(interaction_identifiers.c.type == type_name)
                .where(interaction_identifiers.c.value.in_(chunk))
            )
            found.update(str(interaction_id) for (interaction_id,) in rows)
        return found

    def _load(self, keys: set[str]) -> set[Identifier]:
        """Read these interactions; the normalised values they carry (as stored beside them:
        the same spelling made both).

        By primary key alone: the keys were read under the tenant's filter, and with one
        beside a long ``IN`` list SQLite reads every row of the tenant through the tenant's
        index instead of looking the keys up. A row of another tenant is still never taken."""
        reached: set[Identifier] = set()
        for chunk in _chunks(sorted(keys)):
            rows = self.connection.execute(
                sa.select(
                    interactions.c.id,
                    interactions.c.tenant,
                    interactions.c.identifiers,
                    interactions.c.occurred_at,
                    interactions.c.customer_id,
                )
                .where(interactions.c.id.in_([_uuid(key) for key in chunk]))
                .execution_options(**{ALL_TENANTS: True})
            )
            for interaction_id, tenant, identifiers, occurred_at, customer_id in rows:
                if tenant != self.tenant:
                    continue
                self.interactions[str(interaction_id)] = _Stored(
                    identifiers, occurred_at, customer_id
                )
                for type_name, raw in identifiers.items():
                    value = self.spelling.normalise(type_name, raw)
                    if value is not None:
                        reached.add(value)
        return reached


def _separations(
    connection: sa.Connection, tenant: str, values: set[Identifier]
) -> tuple[tuple[Separation, ...], list[str]]:
    """The tenant's splits that touch the component, and their ids in the same order."""
    rows = connection.execute(
        sa.select(splits.c.id, splits.c.left, splits.c.right)
        .where(splits.c.tenant == tenant)
        .order_by(splits.c.created_at, splits.c.id)
    )
    found: list[Separation] = []
    ids: list[str] = []
    for split_id, left, right in rows:
        separation = Separation(left=_identifiers(left), right=_identifiers(right))
        if (separation.left | separation.right) & values:
            found.append(separation)
            ids.append(str(split_id))
    return tuple(found), ids


def _resolve(
    component: _Component, rules: Rules, separations: tuple[Separation, ...]
) -> Resolution:
    events = [
        Event(
            event_id=interaction_id,
            identifiers=tuple(stored.identifiers.items()),
            timestamp=stored.occurred_at,
        )
        for interaction_id, stored in component.interactions.items()
    ]
    return resolve(events, replace(rules, common=dict(component.common), separations=separations))


def _store_common(
    connection: sa.Connection,
    tenant: str,
    resolution: Resolution,
    known: Mapping[Identifier, str],
) -> None:
    found = [
        {
            "tenant": tenant,
            "type": blocked.identifier.type,
            "value": blocked.identifier.value,
            "detail": blocked.detail,
        }
        for blocked in resolution.blocked
        if blocked.reason == "common" and blocked.identifier not in known
    ]
    if found:
        connection.execute(insert_if_absent(connection.dialect.name, common_values), found)


def _rewrite(
    connection: sa.Connection,
    tenant: str,
    component: _Component,
    resolution: Resolution,
    split_ids: list[str],
    now: datetime,
) -> Reassigned:
    """Replace the component's profiles by the resolution's."""
    before = {key: stored.customer_id for key, stored in component.interactions.items()}
    old_profiles = {profile for profile in before.values() if profile is not None}
    old_profiles |= _owners(connection, tenant, component.values)
    for chunk in _chunks(sorted(old_profiles)):
        connection.execute(
            sa.delete(customer_identifiers)
            .where(customer_identifiers.c.tenant == tenant)
            .where(customer_identifiers.c.customer_id.in_(chunk))
        )
        connection.execute(
            sa.delete(customers)
            .where(customers.c.tenant == tenant)
            .where(customers.c.id.in_(chunk))
        )
    records = _Records(resolution, split_ids)
    after: dict[str, str | None] = dict.fromkeys(before)
    rows, owned = [], []
    for profile in resolution.profiles:
        for event_id in profile.events:
            after[event_id] = profile.profile_id
        rows.append(records.row(profile, tenant=tenant, now=now))
        owned += [
            {
                "tenant": tenant,
                "type": identifier.type,
                "value": identifier.value,
                "customer_id": profile.profile_id,
            }
            for identifier in profile.identifiers
        ]
    if rows:
        connection.execute(sa.insert(customers), rows)
    if owned:
        connection.execute(sa.insert(customer_identifiers), owned)
    changed = [
        {"key": _uuid(key), "customer": profile}
        for key, profile in after.items()
        if profile != before[key]
    ]
    if changed:
        connection.execute(
            sa.update(interactions)
            .where(interactions.c.tenant == tenant)
            .where(interactions.c.id == sa.bindparam("key"))
            .values(customer_id=sa.bindparam("customer")),
            changed,
        )
    merged = _merged(before, after, resolution)
    profiles = [profile.profile_id for profile in resolution.profiles]
    _record_aliases(connection, tenant, merged, set(profiles), old_profiles, now)
    return Reassigned(customer_of=after, merged=merged, profiles=profiles)


def _record_aliases(
    connection: sa.Connection,
    tenant: str,
    merged: Mapping[str, tuple[list[str], list[str]]],
    profiles: set[str],
    before: set[str],
    now: datetime,
) -> None:
    """Point each profile id that ceased at the one profile now holding its interactions
    (aliases that pointed at it follow), and drop the aliases of ids newly naming a profile.
    An id whose interactions went to several profiles gets none: no single answer is right."""
    targets: dict[str, set[str]] = {}
    for profile, (ceased, _) in merged.items():
        for old in ceased:
            targets.setdefault(old, set()).add(profile)
    moved = {
        old: new.pop() for old, new in targets.items() if len(new) == 1 and old not in profiles
    }
    for chunk in _chunks(sorted((profiles - before) | moved.keys())):
        connection.execute(
            sa.delete(aliases).where(aliases.c.tenant == tenant).where(aliases.c.id.in_(chunk))
        )
    if not moved:
        return
    connection.execute(
        sa.update(aliases)
        .where(aliases.c.tenant == tenant)
        .where(aliases.c.customer_id == sa.bindparam("ceased"))
        .values(customer_id=sa.bindparam("now_at")),
        [{"ceased": old, "now_at": new} for old, new in moved.items()],
    )
    connection.execute(
        sa.insert(aliases),
        [
            {"tenant": tenant, "id": old, "customer_id": new, "since": now}
            for old, new in moved.items()
        ],
    )


def _owners(connection: sa.Connection, tenant: str, values: set[Identifier]) -> set[str]:
    found: set[str] = set()
    for type_name, chunk in _by_type(values):
        rows = connection.execute(
            sa.select(customer_identifiers.c.customer_id)
            .where(customer_identifiers.c.tenant == tenant)
            .where(customer_identifiers.c.type == type_name)
            .where(customer_identifiers.c.value.in_(chunk))
        )
        found.update(customer_id for (customer_id,) in rows)
    return found


def _merged(
    before: Mapping[str, str | None], after: Mapping[str, str | None], resolution: Resolution
) -> dict[str, tuple[list[str], list[str]]]:
    """Profiles now holding interactions that were in another profile before: two profiles
    joined, or one gained a smaller identifier and with it a new name."""
    came_from: dict[str, set[str]] = {}
    for key, profile in after.items():
        previous = before[key]
        if profile is not None and previous is not None:
            came_from.setdefault(profile, set()).add(previous)
    linked_by: dict[str, set[str]] = {}
    for merge in resolution.merges:
        linked_by.setdefault(merge.profile_id, set()).update(
            (merge.link.left.type, merge.link.right.type)
        )
    return {
        profile: (sorted(sources - {profile}), sorted(linked_by.get(profile, ())))
        for profile, sources in came_from.items()
        if sources - {profile}
    }


class _Records:
    """Each profile's merge and refusal records, as stored on its row."""

    def __init__(self, resolution: Resolution, split_ids: list[str]) -> None:
        self.merges: dict[str, list[dict[str, Any]]] = {}
        self.refusals: dict[str, list[dict[str, Any]]] = {}
        for merge in resolution.merges:
            self.merges.setdefault(merge.profile_id, []).append(_merge(merge))
        for refusal in resolution.refusals:
            self._refused(refusal.profiles, _cap_refusal(refusal))
        for refused in resolution.separated:
            self._refused(refused.profiles, _split_refusal(refused, split_ids))

    def _refused(self, profiles: tuple[str, str], record: dict[str, Any]) -> None:
        for profile in set(profiles):
            self.refusals.setdefault(profile, []).append(record)

    def row(self, profile: Profile, *, tenant: str, now: datetime) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "id": profile.profile_id,
            "identifiers": [_identifier(identifier) for identifier in profile.identifiers],
            "merges": self.merges.get(profile.profile_id, []),
            "refusals": sorted(
                self.refusals.get(profile.profile_id, []), key=lambda record: record["step"]
            ),
            "interactions": len(profile.events),
            "first_seen": profile.first_seen,
            "last_seen": profile.last_seen,
            "updated_at": now,
        }


def _merge(merge: Merge) -> dict[str, Any]:
    return {
        "step": merge.step,
        "left": _identifier(merge.link.left),
        "right": _identifier(merge.link.right),
        "interactions": merge.link.events,
        "first_interaction": merge.link.first_event,
        "sizes": list(merge.sizes),
    }


def _cap_refusal(refusal: CapRefusal) -> dict[str, Any]:
    return {
        "reason": "cap",
        "step": refusal.step,
        "left": _identifier(refusal.link.left),
        "right": _identifier(refusal.link.right),
        "first_interaction": refusal.link.first_event,
        "profiles": list(refusal.profiles),
        "type": refusal.type,
        "would_hold": refusal.would_hold,
        "limit": refusal.limit,
    }


def _split_refusal(refused: SeparationRefusal, split_ids: list[str]) -> dict[str, Any]:
    return {
        "reason": "split",
        "step": refused.step,
        "left": _identifier(refused.link.left),
        "right": _identifier(refused.link.right),
        "first_interaction": refused.link.first_event,
        "profiles": list(refused.profiles),
        "split_id": split_ids[refused.separation],
    }


def _identifier(identifier: Identifier) -> dict[str, str]:
    return {"type": identifier.type, "value": identifier.value}


def _identifiers(rows: Iterable[Mapping[str, str]]) -> frozenset[Identifier]:
    return frozenset(Identifier(row["type"], row["value"]) for row in rows)


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _by_type(values: Iterable[Identifier]) -> Iterable[tuple[str, Sequence[str]]]:
    """The values of each type, in chunks: ``type = ? AND value IN (...)`` is a search of the
    ``(tenant, type, value)`` index on both databases, where a row-value ``IN`` reads every row
    of the tenant on SQLite."""
    of_type: dict[str, list[str]] = {}
    for identifier in sorted(values):
        of_type.setdefault(identifier.type, []).append(identifier.value)
    for type_name, found in of_type.items():
        for chunk in _chunks(found):
            yield type_name, chunk


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)
