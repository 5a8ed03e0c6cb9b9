"""The delivery worker: claims due deliveries, signs and sends them, records what happened.

Claiming is one short transaction that gives each chosen delivery a lease (``lease_until``, a
``lease_token``) and counts the attempt; sending holds no transaction; recording is another short
transaction that changes the row only if the lease is still this worker's. So with several gateway
replicas a delivery is never sent by two at once (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, each
replica takes other rows; SQLite: one writer at a time), and a worker that dies mid-send leaves a
row that another takes once the lease has passed (at-least-once: the receiver deduplicates on
``webhook-id``).

An attempt: resolve the URL and check every address (outside development), connect to a checked
address only, ``POST`` the stored body with fresh Standard Webhooks headers, take the status
line within ``webhook_timeout_seconds``, no redirects followed, no connection reused (a pooled TLS
connection verified for one name must not carry another name's delivery).
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client import Counter
from sqlmodel import col

from cxops.common.db import Database
from cxops.common.events.tables import inbox
from cxops.gateway.models import WebhookDelivery, WebhookEndpoint
from cxops.gateway.settings import GatewaySettings
from cxops.gateway.webhooks import signing
from cxops.gateway.webhooks.destinations import (
    RefusedDestination,
    Resolver,
    resolve,
    system_resolver,
)
from cxops.gateway.webhooks.retries import (
    AttemptResult,
    DeliveryStatus,
    decide,
    parse_retry_after,
)
from cxops.gateway.webhooks.sealing import SecretSealer, UnsealError
from cxops.gateway.webhooks.service import signing_secrets

log = logging.getLogger("cxops.gateway.webhooks")

WEBHOOK_ATTEMPTS = Counter(
    "cxops_gateway_webhook_attempts_total", "Webhook delivery attempts", ["outcome"]
)
USER_AGENT = "cxops-webhooks/1"
#: The inbox rows of the consumers that feed webhooks (``gateway-webhooks-<service>``).
INBOX_CONSUMERS = "gateway-webhooks-%"
PURGE_EVERY = timedelta(hours=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker holds the lease of, with what it needs to send it."""

    id: uuid.UUID
    lease_token: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: str
    payload: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


def webhook_client(*, timeout: float, verify: Any = True) -> httpx.AsyncClient:
    """No proxies from the environment, no redirects (a redirect could lead anywhere, past the
    address check), no keep-alive (see the module's docstring)."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            verify=verify,
            retries=0,
        ),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )


class DeliveryWorker:
    def __init__(
        self,
        *,
        db: Database,
        settings: GatewaySettings,
        sealer: SecretSealer,
        http: httpx.AsyncClient,
        resolver: Resolver = system_resolver,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sealer = sealer
        self.http = http
        #: How webhook hosts are resolved, when an endpoint is written and at every attempt.
        self.resolver = resolver
        self.clock = clock
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and send forever, at most ``webhook_max_concurrent_deliveries`` at once."""
        capacity = self.settings.webhook_max_concurrent_deliveries
        inflight: set[asyncio.Task[None]] = set()
        last_purge: datetime | None = None
        try:
            while True:
                self._wake.clear()
                free = capacity - len(inflight)
                claimed: list[Claimed] = []
                if free > 0:
                    try:
                        claimed = await self.claim(limit=free)
                    except Exception as exc:  # noqa: BLE001 - database down: wait, retry
                        log.warning("cannot claim webhook deliveries (%s); retrying", exc)
                for delivery in claimed:
                    task = asyncio.create_task(self.send(delivery))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    task.add_done_callback(lambda _t: self._wake.set())
                if claimed and len(claimed) == free:
                    continue  # perhaps more are due: claim again as soon as a slot frees
                if last_purge is None or self.clock() - last_purge > PURGE_EVERY:
                    await self._purge_quietly()
                    last_purge = self.clock()
                try:
                    async with asyncio.timeout(self.settings.webhook_poll_seconds):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in inflight:
                task.cancel()  # their leases run out; another worker (or a restart) retries

    async def claim(self, *, limit: int, delivery_id: uuid.UUID | None = None) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries of enabled endpoints (or just ``delivery_id``,
        enabled or not, for a test delivery), counting the attempt they are about to get."""
        now = self.clock()
        delivery, endpoint = WebhookDelivery, WebhookEndpoint
        query = (
            sa.select(
                col(delivery.id),
                col(delivery.endpoint_id),
                col(delivery.event_id),
                col(delivery.payload),
                col(delivery.attempts),
                col(endpoint.url),
                col(endpoint.secret),
                col(endpoint.previous_secret),
                col(endpoint.previous_secret_expires_at),
            )
            .join(endpoint, col(endpoint.id) == col(delivery.endpoint_id))
            .where(
                col(delivery.status) == DeliveryStatus.PENDING.value,
                col(delivery.next_attempt_at) <= now,
                sa.or_(col(delivery.lease_until).is_(None), col(delivery.lease_until) < now),
            )
            .order_by(col(delivery.next_attempt_at))
            .limit(limit)
            .with_for_update(of=delivery.__table__, skip_locked=True)  # type: ignore[attr-defined]
            .execution_options(all_tenants=True)  # the worker serves every tenant
        )
        if delivery_id is None:
            query = query.where(col(endpoint.enabled).is_(True))
        else:
            query = query.where(col(delivery.id) == delivery_id)
        token = uuid.uuid4()
        async with self.db.transaction() as session:
            rows = (await session.execute(query)).all()
            if not rows:
                return []
            await session.execute(
                sa.update(delivery)
                .execution_options(all_tenants=True)
                .where(col(delivery.id).in_([row.id for row in rows]))
                .values(
                    lease_until=now + self.lease,
                    lease_token=token,
                    attempts=col(delivery.attempts) + 1,
                    last_attempt_at=now,
                )
            )
        return [
            Claimed(
                id=row.id,
                lease_token=token,
                endpoint_id=row.endpoint_id,
                event_id=row.event_id,
                payload=row.payload,
                attempts=row.attempts + 1,
                url=row.url,
                secret=row.secret,
                previous_secret=row.previous_secret,
                previous_secret_expires_at=row.previous_secret_expires_at,
            )
            for row in rows
        ]

    async def send(self, delivery: Claimed) -> None:
        """One attempt and its record; nothing escapes (the next attempt is on the schedule)."""
        try:
            result = await self.attempt(delivery)
        except Exception as exc:  # a bug must not kill the worker; the delivery is retried
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
            result = AttemptResult(None, error=f"internal error: {exc!r}"[:500])
        WEBHOOK_ATTEMPTS.labels(
            "succeeded" if result.succeeded else str(result.status_code or "no_response")
        ).inc()
        try:
            await self.record(delivery, result)
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("cannot record webhook delivery %s", delivery.id)

    async def attempt(self, delivery: Claimed) -> AttemptResult:
        try:
            secrets = signing_secrets(
                endpoint_id=delivery.endpoint_id,
                secret=delivery.secret,
                previous_secret=delivery.previous_secret,
                previous_secret_expires_at=delivery.previous_secret_expires_at,
                sealer=self.sealer,
                now=self.clock(),
            )
        except UnsealError as exc:
            return AttemptResult(None, error=f"cannot sign: {exc}")
        try:
            destination = await resolve(
                delivery.url, checked=self.settings.webhook_urls_checked, resolver=self.resolver
            )
        except RefusedDestination as exc:
            return AttemptResult(None, error=f"refused destination: {exc}")
        body = delivery.payload.encode()
        headers = signing.headers(
            secrets=secrets,
            message_id=delivery.event_id,
            timestamp=int(self.clock().timestamp()),
            body=body,
        )
        headers["user-agent"] = USER_AGENT
        failure = "no address to connect to"
        for address in destination.addresses:
            url, pinned, extensions = destination.request_for(address)
            request = self.http.build_request(
                "POST", url, content=body, headers={**headers, **pinned}, extensions=extensions
            )
            try:
                async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                    response = await self.http.send(request, stream=True)
                    await response.aclose()
            except httpx.ConnectError as exc:
                failure = f"cannot connect to {address}: {exc}"
                continue  # the next address the name resolves to
            except (httpx.HTTPError, TimeoutError) as exc:
                timed_out = isinstance(exc, TimeoutError | httpx.TimeoutException)
                return AttemptResult(None, error=f"{address}: {'timed out' if timed_out else exc}")
            code = response.status_code
            return AttemptResult(
                code,
                retry_after=parse_retry_after(
                    response.headers.get("retry-after"), now=self.clock()
                ),
                error=None if 200 <= code < 300 else f"HTTP {code}",
            )
        return AttemptResult(None, error=failure[:500])

    async def record(self, delivery: Claimed, result: AttemptResult) -> None:
        now = self.clock()
        decision = decide(
            attempts=delivery.attempts,
            result=result,
            now=now,
            schedule=self.settings.webhook_retry_schedule_seconds,
        )
        finished = decision.status is not DeliveryStatus.PENDING
        async with self.db.transaction() as session:
            updated = await session.execute(
                sa.update(WebhookDelivery)
                .execution_options(all_tenants=True)
                .where(
                    col(WebhookDelivery.id) == delivery.id,
                    col(WebhookDelivery.lease_token) == delivery.lease_token,
                )
                .values(
                    status=decision.status.value,
                    last_attempt_at=now,  # when it ended: the schedule counts from there
                    next_attempt_at=decision.next_attempt_at,
                    last_response_code=result.status_code,
                    last_error=result.error,
                    lease_until=None,
                    lease_token=None,
                    finished_at=now if finished else None,
                )
            )
            if getattr(updated, "rowcount", 1) == 0:
                log.warning("webhook delivery %s: lease lost before recording", delivery.id)
                return
            if decision.disable_endpoint:
                await session.execute(
                    sa.update(WebhookEndpoint)
                    .execution_options(all_tenants=True)
                    .where(col(WebhookEndpoint.id) == delivery.endpoint_id)
                    .values(
                        enabled=False,
                        disabled_reason=f"the receiver answered 410 Gone at {now.isoformat()}",
                        updated_at=now,
                    )
                )
                log.warning("webhook endpoint %s disabled: 410 Gone", delivery.endpoint_id)

    async def deliver_now(self, delivery_id: uuid.UUID) -> bool:
        """Attempt one delivery at once (a test delivery); False if it was not due or is held
        by another worker."""
        claimed = await self.claim(limit=1, delivery_id=delivery_id)
        for delivery in claimed:
            await self.send(delivery)
        return bool(claimed)

    async def purge(self) -> None:
        """Finished deliveries and the webhook consumers' inbox rows past the retention."""
        cutoff = self.clock() - timedelta(days=self.settings.webhook_retention_days)
        async with self.db.transaction() as session:
            await session.execute(
                sa.delete(WebhookDelivery)
                .execution_options(all_tenants=True)
                .where(col(WebhookDelivery.finished_at) < cutoff)
            )
            await session.execute(
                sa.delete(inbox).where(
                    inbox.c.consumer.like(INBOX_CONSUMERS), inbox.c.handled_at < cutoff
                )
            )

    async def _purge_quietly(self) -> None:
        try:
            await self.purge()
        except Exception as exc:  # noqa: BLE001 - tried again at the next purge
            log.warning("cannot purge old webhook deliveries (%s)", exc)
