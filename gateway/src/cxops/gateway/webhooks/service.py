"""Webhook use cases: endpoints (create, change, rotate, delete), deliveries (list, retry, test),
and turning an event into deliveries. Keyword-only; the caller's transaction commits."""

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
import uuid6
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.events import Event
from cxops.gateway.event_types import Pattern, matches_any, parse_patterns
from cxops.gateway.models import WebhookDelivery, WebhookEndpoint
from cxops.gateway.webhooks import destinations, signing
from cxops.gateway.webhooks.destinations import RefusedDestination, Resolver
from cxops.gateway.webhooks.repository import WebhookRepository
from cxops.gateway.webhooks.retries import DeliveryStatus
from cxops.gateway.webhooks.schemas import EndpointCreate, EndpointUpdate
from cxops.gateway.webhooks.sealing import SecretSealer

#: What ``POST /v1/webhooks/endpoints/{id}/test`` sends; never published on NATS.
TEST_EVENT_TYPE = "cx.gateway.webhook.test.v1"


class EndpointNotFound(LookupError):
    pass


class DeliveryNotFound(LookupError):
    pass


class DeliveryInProgress(Exception):
    """The delivery is pending already: it will be attempted on its schedule."""


class InvalidField(ValueError):
    """A field that passed the schema but not the rules (e.g. ``url`` resolves to a private
    address); the API answers 422 naming it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


async def _check_url(url: str, *, checked: bool, resolver: Resolver) -> None:
    try:
        await destinations.check_url(url, checked=checked, resolver=resolver)
    except RefusedDestination as exc:
        raise InvalidField("url", str(exc)) from exc


async def create_endpoint(
    session: AsyncSession,
    *,
    tenant: str,
    body: EndpointCreate,
    sealer: SecretSealer,
    checked: bool,
    resolver: Resolver,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret, which is stored sealed and returned this once."""
    await _check_url(body.url, checked=checked, resolver=resolver)
    endpoint_id = uuid6.uuid7()
    secret = signing.generate_secret()
    row = WebhookEndpoint(
        id=endpoint_id,
        tenant=tenant,
        url=body.url,
        description=body.description,
        event_types=body.event_types,
        enabled=True,
        secret=sealer.seal(secret, endpoint_id=endpoint_id),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row, secret


async def get_endpoint(
    session: AsyncSession, *, tenant: str, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    row = await WebhookRepository(session, tenant=tenant).endpoint(endpoint_id)
    if row is None:
        raise EndpointNotFound(f"No webhook endpoint {endpoint_id} in tenant '{tenant}'.")
    return row


async def update_endpoint(
    session: AsyncSession,
    *,
    tenant: str,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    checked: bool,
    resolver: Resolver,
    now: datetime,
) -> WebhookEndpoint:
    row = await get_endpoint(session, tenant=tenant, endpoint_id=endpoint_id)
    if body.url is not None:
        await _check_url(body.url, checked=checked, resolver=resolver)
        row.url = body.url
    if body.event_types is not None:
        row.event_types = body.event_types
    if body.description is not None:
        row.description = body.description
    if body.enabled is not None:
        row.enabled = body.enabled
        row.disabled_reason = None
    row.updated_at = now
    await session.flush()
    return row


async def delete_endpoint(session: AsyncSession, *, tenant: str, endpoint_id: uuid.UUID) -> None:
    """The endpoint and its deliveries (a delivery being sent right now is not recorded)."""
    row = await get_endpoint(session, tenant=tenant, endpoint_id=endpoint_id)
    await WebhookRepository(session, tenant=tenant).delete_deliveries_of(row.id)
    await session.delete(row)
    await session.flush()


async def rotate_secret(
    session: AsyncSession,
    *,
    tenant: str,
    endpoint_id: uuid.UUID,
    sealer: SecretSealer,
    overlap: timedelta,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing beside it until ``now + overlap``. A secret
    older than the current one stops signing at once (two at most sign a delivery)."""
    row = await get_endpoint(session, tenant=tenant, endpoint_id=endpoint_id)
    secret = signing.generate_secret()
    row.previous_secret = row.secret
    row.previous_secret_expires_at = now + overlap
    row.secret = sealer.seal(secret, endpoint_id=row.id)
    row.updated_at = now
    await session.flush()
    return row, secret


def signing_secrets(
    *,
    endpoint_id: uuid.UUID,
    secret: str,
    previous_secret: str | None,
    previous_secret_expires_at: datetime | None,
    sealer: SecretSealer,
    now: datetime,
) -> list[str]:
    """The secrets a delivery is signed with at ``now``: the current one, and the previous one
    during a rotation's overlap."""
    secrets = [sealer.unseal(secret, endpoint_id=endpoint_id)]
    if (
        previous_secret is not None
        and previous_secret_expires_at is not None
        and now < previous_secret_expires_at
    ):
        secrets.append(sealer.unseal(previous_secret, endpoint_id=endpoint_id))
    return secrets


def _delivery(
    *, endpoint: WebhookEndpoint, event_id: str, event_type: str, payload: str, now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        id=uuid6.uuid7(),
        tenant=endpoint.tenant,
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


async def deliveries_for_events(
    session: AsyncSession,
    *,
    events: Sequence[Event],
    now: datetime,
    on_commit: Callable[[], None] | None = None,
) -> int:
    """A pending delivery for each enabled endpoint of each event's tenant subscribed to its
    type; the consumer's transaction stores them with the events' inbox rows, before the events
    are acknowledged. One query per tenant in the batch, not per event. ``on_commit`` runs once
    they are committed (it wakes the delivery worker)."""
    subscribers: dict[str, list[tuple[WebhookEndpoint, list[Pattern]]]] = {}
    deliveries = []
    for event in events:
        if event.tenant not in subscribers:
            endpoints = await WebhookRepository(session, tenant=event.tenant).enabled_endpoints()
            subscribers[event.tenant] = [(e, parse_patterns(e.event_types)) for e in endpoints]
        subscribed = [
            e for e, patterns in subscribers[event.tenant] if matches_any(patterns, event.type)
        ]
        if not subscribed:
            continue
        body = signing.payload(event_type=event.type, occurred_at=event.time, data=event.data)
        deliveries += [
            _delivery(endpoint=e, event_id=event.id, event_type=event.type, payload=body, now=now)
            for e in subscribed
        ]
    if not deliveries:
        return 0
    session.add_all(deliveries)
    await session.flush()
    if on_commit is not None:
        sa.event.listen(session.sync_session, "after_commit", lambda _s: on_commit(), once=True)
    return len(deliveries)


async def create_test_delivery(
    session: AsyncSession, *, tenant: str, endpoint_id: uuid.UUID, now: datetime
) -> WebhookDelivery:
    """A delivery of :data:`TEST_EVENT_TYPE`, signed and retried like any other."""
    endpoint = await get_endpoint(session, tenant=tenant, endpoint_id=endpoint_id)
    event_id = str(uuid6.uuid7())
    body = signing.payload(
        event_type=TEST_EVENT_TYPE,
        occurred_at=now,
        data={"endpoint_id": str(endpoint.id), "message": "A test delivery from cxops."},
    )
    row = _delivery(
        endpoint=endpoint, event_id=event_id, event_type=TEST_EVENT_TYPE, payload=body, now=now
    )
    session.add(row)
    await session.flush()
    return row


async def retry_delivery(
    session: AsyncSession, *, tenant: str, delivery_id: uuid.UUID, now: datetime
) -> WebhookDelivery:
    """A finished delivery (failed, or succeeded and wanted again) goes back to pending, due
    now, on a fresh schedule; the same ``webhook-id`` and body."""
    row = await WebhookRepository(session, tenant=tenant).delivery(delivery_id)
    if row is None:
        raise DeliveryNotFound(f"No webhook delivery {delivery_id} in tenant '{tenant}'.")
    if row.status == DeliveryStatus.PENDING.value:
        raise DeliveryInProgress(
            f"Delivery {delivery_id} is pending already; next attempt at {row.next_attempt_at}."
        )
    row.status = DeliveryStatus.PENDING.value
    row.attempts = 0
    row.next_attempt_at = now
    row.finished_at = None
    await session.flush()
    return row
