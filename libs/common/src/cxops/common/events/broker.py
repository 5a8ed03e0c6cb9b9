"""The NATS connection a service keeps for its whole life, and stream provisioning.

The connection is made in the background and retried forever, so a service starts (and reports
not-ready) while the broker is down; once connected, nats-py reconnects on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from cxops.common.settings import NatsSettings

log = logging.getLogger("cxops.events")


def nats_credentials(settings: NatsSettings) -> dict[str, str]:
    """nats-py's ``connect`` arguments for the credentials in ``settings`` (none: anonymous).
    Files are read by nats-py on each (re)connection, so a rotated seed is picked up."""
    if settings.nats_nkey_seed_file is not None:
        return {"nkeys_seed": str(settings.nats_nkey_seed_file)}
    if settings.nats_nkey_seed is not None:
        return {"nkeys_seed_str": settings.nats_nkey_seed.get_secret_value()}
    if settings.nats_creds_file is not None:
        return {"user_credentials": str(settings.nats_creds_file)}
    if settings.nats_user is not None and settings.nats_password is not None:
        return {"user": settings.nats_user, "password": settings.nats_password.get_secret_value()}
    return {}


DEAD_LETTER_STREAM = "CX_DEADLETTER"
DEAD_LETTER_PREFIX = "cx.deadletter"


@dataclass(frozen=True)
class WorkQueue:
    """A service's work-queue stream (retention ``workqueue``): items that one of its replicas
    takes and acks, through one durable consumer, such as journey's jobs. Named for the service
    (:func:`work_queue`), so that its NATS user may use it and no other."""

    stream: str
    subjects: tuple[str, ...]
    consumer: str


def work_queue(service: str, use: str) -> WorkQueue:
    """``journey``, ``jobs`` → stream ``CX_JOURNEY_JOBS``, subjects ``jobs.journey.>`` (outside
    ``cx.journey.>``, which the events' stream holds), consumer ``journey-jobs``."""
    return WorkQueue(
        stream=f"{stream_name(service)}_{use.upper()}",
        subjects=(f"{use}.{service}.>",),
        consumer=f"{service}-{use}",
    )


def stream_name(service: str) -> str:
    """The stream a service publishes to: ``feedback`` → ``CX_FEEDBACK``."""
    return f"CX_{service.upper()}"


def client_name(component: str) -> str:
    """The NATS client name of a component's connections: ``cxops-feedback``."""
    return f"cxops-{component}"


def inbox_prefix(name: str) -> str:
    """Where a client's replies arrive (JetStream API answers, fetched messages):
    ``_INBOX.cxops-feedback``. One prefix per client name lets the server allow each component
    to subscribe to its own replies only."""
    return f"_INBOX.{name}"


class Broker:
    """``name`` is the client's name, ``cxops-<component>`` (:func:`client_name`): the NATS
    permissions allow each component replies under its own :func:`inbox_prefix` only.
    ``credentials`` are nats-py's ``connect`` arguments that authenticate the client."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        name: str,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.servers = list(servers)
        self.name = name
        self.credentials = dict(credentials or {})
        self._nc: NatsClient | None = None
        self._connected = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: NatsSettings, *, name: str) -> Broker:
        """The broker a component's settings describe; ``name`` identifies the client."""
        return cls(settings.nats_servers, name=name, credentials=nats_credentials(settings))

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("the broker is not connected yet")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream(timeout=5)

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def connect(self, *, retry_seconds: float = 0.5) -> None:
        """Connect, retrying until the broker answers; then stay connected through outages."""
        while self._nc is None:
            try:
                self._nc = await nats.connect(
                    servers=self.servers,
                    name=self.name,
                    inbox_prefix=inbox_prefix(self.name),
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    ping_interval=5,
                    max_outstanding_pings=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    **self.credentials,
                )
            except Exception as exc:  # noqa: BLE001 - any failure to connect means "try again"
                log.warning("broker unreachable (%s); retrying", exc)
                await asyncio.sleep(retry_seconds)
        self._connected.set()
        log.info("connected to NATS at %s", getattr(self.nc.connected_url, "netloc", "?"))

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats error: %s", exc)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout=5)
            except Exception:  # noqa: BLE001 - shutting down either way
                await self._nc.close()

    async def ensure_stream(
        self,
        name: str,
        subjects: list[str],
        *,
        max_age_seconds: float,
        replicas: int = 1,
        duplicate_window_seconds: float = 120,
    ) -> None:
        """Create the stream, or bring an existing one to this configuration. Safe to repeat."""
        config = StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=max_age_seconds,
            num_replicas=replicas,
            duplicate_window=min(duplicate_window_seconds, max_age_seconds),
        )
        try:
            await self.js.stream_info(name)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
                return
            except BadRequestError:  # another process created it meanwhile
                pass
        await self.js.update_stream(config)
