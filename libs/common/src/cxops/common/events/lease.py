"""Ownership leases on a NATS JetStream key-value bucket: at most one holder per key.

Why: routing keeps each tenant's matching engine in memory. With two or more replicas, two
engines for one tenant would offer the same task twice and each hold a different picture of
who is busy, so each tenant has exactly one owner; the other replicas forward its calls there.
The owner writes every change to its database before answering, so whoever owns the tenant
next rebuilds the engine from the database.

How: one bucket per use (``cxops_routing_owners``), one entry per key (a tenant), whose value
is the holder's id. NATS KV gives every primitive this needs, so none is made here:

- **taking** is ``create``, which writes only if the key has no value (nats-py also re-creates
  over a delete tombstone, by a compare-and-set on the tombstone's revision);
- **renewing** is ``update(key, holder, last=revision)``, a compare-and-set: it fails if anyone
  else wrote the key since, or if the entry expired;
- **expiry** is the bucket's ``max_age`` (= ``ttl_seconds``): JetStream removes an entry
  ``ttl`` after its last write, so a lease that is not renewed disappears by itself;
- **giving up** is ``delete(key, last=revision)``, which never removes another holder's entry.

Timing: the holder renews every key every ``ttl / 3``. A dead holder's entries disappear at most
``ttl`` after its last renewal (plus the server's expiry timer, well under a second); another
replica takes the key at its next ``acquire`` after that, so failover takes at most
``ttl`` + that replica's polling interval: at most twice the TTL when it polls at least once
per TTL.

Failure modes:

- **Split brain is prevented by the compare-and-set.** Only an ``update`` with the revision the
  holder last wrote renews; once the entry expired or someone else created it, that revision is
  gone and the renewal fails. The holder is then told (``on_lost``) and forgets the key.
- **A paused holder** (a long GC pause, SIGSTOP, a suspended VM) that comes back must stop at
  once. Its lease is valid locally until ``ttl`` after the *sending* of its last successful
  renewal (measured on ``CLOCK_BOOTTIME``, which keeps counting while the machine sleeps): the
  server wrote that entry later, so it cannot expire earlier. Past that deadline, :meth:`holds`
  says no and ``on_lost`` is called before any request is tried. Callers check
  :meth:`Leases.holds` right before acting as the owner. What this cannot fence is an action
  already under way when the pause began (a database write issued before it, landing after);
  that would need the lease's revision checked by the database itself.
- **Broker outage**: renewals that fail for any other reason than the compare-and-set (NATS
  unreachable, a timeout) are retried at the next tick; once ``ttl`` passed since the last
  successful renewal the lease counts as lost (``on_lost``), because the server may have
  expired it by then. An ``acquire`` while NATS is unreachable raises
  :class:`LeaseStoreUnavailable`: "cannot tell" is not "someone else holds it".
- **An answer lost in transit** (a ``create`` or renewal that was written but timed out): the
  entry then holds our own id under a revision we do not know. Since holder ids are unique per
  process, an entry with ours was written by us; it is taken back with a compare-and-set on its
  revision rather than waited out.

Assumptions: the holder id is unique per process (a restarted process takes a new one); every
replica uses the same ``ttl_seconds`` (the bucket's ``max_age`` is set by the last to start);
the NATS servers' clocks agree to well within ``ttl``.

Permissions: a component may use only the buckets it declares (``ServiceSpec.lease_buckets``,
named ``cxops_<component>_<use>`` by :func:`lease_bucket`), see
:mod:`cxops.common.events.permissions`.

No clock is injected, unlike the rest of the suite's deadlines: the lease expires on the NATS
server's clock, which a test cannot move, and the holder's own deadline must follow real time to
stay behind the server's.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import nats.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import KV_PRE_TEMPLATE, KV_STREAM_TEMPLATE
from nats.js.errors import (
    APIError,
    BadRequestError,
    InvalidKeyError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from cxops.common.events.broker import Broker

log = logging.getLogger("cxops.events.lease")

#: JetStream's "wrong last sequence" errors: a compare-and-set that found another revision.
_WRONG_LAST_SEQUENCE = (10071, 10164)
#: "stream name already in use with a different configuration".
_STREAM_EXISTS_OTHERWISE = 10058
#: The longest a single request to NATS may take (shorter when the renewal interval is).
_MAX_REQUEST_SECONDS = 5.0

OnLost = Callable[[str], Awaitable[None] | None]


def _now() -> float:
    """Seconds on a clock that keeps running while the machine is suspended (Linux's
    ``CLOCK_BOOTTIME``; elsewhere the monotonic clock)."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


def lease_bucket(component: str, use: str) -> str:
    """The bucket of a component's leases for one use: ``("routing", "owners")`` →
    ``cxops_routing_owners``. The prefix is what the NATS permissions check a declared bucket
    against."""
    return f"cxops_{component}_{use}"


def lease_stream(bucket: str) -> str:
    """The JetStream stream behind a bucket, as nats-py names it: ``KV_<bucket>``."""
    return KV_STREAM_TEMPLATE.format(bucket=bucket)


def lease_subjects(bucket: str) -> str:
    """The subjects a bucket's keys are written to, as nats-py names them: ``$KV.<bucket>.>``."""
    return f"{KV_PRE_TEMPLATE.format(bucket=bucket)}>"


def new_holder_id() -> str:
    """An id for this process: host, pid and random bits, so a restarted process (same host,
    maybe the same pid) never passes for its predecessor."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class LeaseStoreUnavailable(RuntimeError):
    """NATS did not answer (down, unreachable, the request timed out, or JetStream is
    temporarily unavailable): whether the lease is free or held could not be told."""


@contextmanager
def _answered(bucket: str) -> Iterator[None]:
    """Turns NATS failing to answer into :class:`LeaseStoreUnavailable`. An error the broker
    answered with keeps its own exception, and an invalid key stays nats-py's
    ``InvalidKeyError``."""
    try:
        yield
    except (InvalidKeyError, LeaseStoreUnavailable):
        raise
    except ServiceUnavailableError as exc:
        raise LeaseStoreUnavailable(f"JetStream is unavailable for {bucket}: {exc}") from exc
    except APIError:
        raise
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise LeaseStoreUnavailable(f"NATS did not answer for {bucket}: {exc!r}") from exc


@dataclass
class _Lease:
    revision: int
    #: When the lease ends by our clock (:func:`_now`) unless renewed.
    expires: float


class Leases:
    """This process's leases in one bucket. One instance per process and bucket; ``holder``
    identifies the process (what :meth:`holder_of` answers to the others), ``replicas`` is the
    bucket's number of copies in a NATS cluster. :meth:`run` must be running for the leases to
    be kept."""

    def __init__(
        self,
        broker: Broker,
        *,
        bucket: str,
        holder: str,
        ttl_seconds: float,
        replicas: int = 1,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self.broker = broker
        self.bucket = bucket
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.replicas = replicas
        self._value = holder.encode()
        self._held: dict[str, _Lease] = {}
        self._kv: KeyValue | None = None
        self._opening = asyncio.Lock()
        self._on_lost: OnLost | None = None

    @property
    def renew_interval(self) -> float:
        """How often :meth:`run` renews: a third of the TTL, so two renewals can fail before
        the lease is lost."""
        return self.ttl_seconds / 3

    @property
    def held(self) -> frozenset[str]:
        """The keys this process holds now (by its own, conservative, clock)."""
        now = _now()
        return frozenset(key for key, lease in self._held.items() if lease.expires > now)

    def holds(self, key: str) -> bool:
        """Whether this process holds ``key`` now; ask right before acting as its owner."""
        lease = self._held.get(key)
        return lease is not None and lease.expires > _now()

    async def acquire(self, key: str) -> bool:
        """Take the lease on ``key`` if no one holds it, or keep it if we do; whether we hold it
        now. Raises :class:`LeaseStoreUnavailable` when NATS cannot answer, and nats-py's
        ``InvalidKeyError`` for a key KV does not allow."""
        lease = self._held.get(key)
        if lease is not None:
            if lease.expires > _now():
                return True
            await self._lose(key, lease)
        with _answered(self.bucket):
            kv = await self._open()
            sent = _now()
            try:
                revision = await kv.create(key, self._value)
            except KeyWrongLastSequenceError:
                if self.holds(key):  # taken meanwhile by a concurrent acquire of ours
                    return True
                reclaimed = await self._reclaim(kv, key)
                if reclaimed is None:
                    return False
                revision = reclaimed
        self._held[key] = _Lease(revision=revision, expires=sent + self.ttl_seconds)
        log.info("took the lease on %s/%s", self.bucket, key)
        return True

    async def holder_of(self, key: str) -> str | None:
        """Who holds ``key`` (their ``holder`` id), or ``None`` if it is free or expired."""
        with _answered(self.bucket):
            entry = await self._entry(await self._open(), key)
        return None if entry is None else entry[1].decode(errors="replace")

    async def release(self, key: str) -> None:
        """Give ``key`` up, if we hold it, so another replica can take it at once. Another
        holder's entry is never removed (the delete is a compare-and-set on our revision). We
        stop holding the key even if NATS cannot be reached (then raises
        :class:`LeaseStoreUnavailable`, and the entry lapses after the TTL)."""
        lease = self._held.pop(key, None)
        with _answered(self.bucket):
            kv = await self._open()
            revision = lease.revision if lease is not None else None
            for _attempt in range(2):
                if revision is None:  # perhaps ours under a revision we missed
                    revision = await self._own_revision(kv, key)
                    if revision is None:
                        return
                try:
                    await kv.delete(key, last=revision)
                except APIError as exc:
                    if exc.err_code not in _WRONG_LAST_SEQUENCE:
                        raise
                    revision = None
                else:
                    log.info("released the lease on %s/%s", self.bucket, key)
                    return

    async def release_all(self) -> None:
        """Release every held key (on shutdown), best effort: what cannot be released lapses
        after the TTL."""
        for key in list(self._held):
            try:
                await self.release(key)
            except LeaseStoreUnavailable as exc:
                log.warning("could not release %s/%s (%s); it lapses", self.bucket, key, exc)

    async def run(self, on_lost: OnLost) -> None:
        """Renew every held key each :attr:`renew_interval` until cancelled, calling
        ``on_lost(key)`` (a function or a coroutine function) for a key that is no longer ours:
        taken over, expired, or not renewed for ``ttl`` because NATS could not be reached. A
        lost key is forgotten; :meth:`acquire` may take it again. Cancelling this stops the
        renewals but releases nothing (call :meth:`release_all` for that): to the others it
        looks like a dead process."""
        self._on_lost = on_lost
        try:
            while True:
                await asyncio.gather(
                    *(self._renew(key, lease) for key, lease in list(self._held.items()))
                )
                now = _now()
                deadlines = [lease.expires - now for lease in self._held.values()]
                await asyncio.sleep(max(0.0, min([self.renew_interval, *deadlines])))
        finally:
            self._on_lost = None

    async def _renew(self, key: str, lease: _Lease) -> None:
        remaining = lease.expires - _now()
        if remaining <= 0:
            await self._lose(key, lease)
            return
        sent = _now()
        try:
            async with asyncio.timeout(remaining):
                revision = await self._write_renewal(key, lease)
        except Exception as exc:  # noqa: BLE001 - an outage or a timeout: retried next tick
            if lease.expires <= _now():
                await self._lose(key, lease)
            else:
                log.warning("could not renew %s/%s (%s); retrying", self.bucket, key, exc)
            return
        if revision is None:
            await self._lose(key, lease)
        elif self._held.get(key) is lease:
            lease.revision, lease.expires = revision, sent + self.ttl_seconds

    async def _write_renewal(self, key: str, lease: _Lease) -> int | None:
        """The new revision, or ``None`` if the entry is no longer ours."""
        kv = await self._open()
        try:
            return await kv.update(key, self._value, last=lease.revision)
        except KeyWrongLastSequenceError:
            return await self._reclaim(kv, key)

    async def _lose(self, key: str, lease: _Lease) -> None:
        """Forget ``lease`` (if it is still the one held for ``key``) and say so."""
        if self._held.get(key) is not lease:
            return
        del self._held[key]
        log.warning("lost the lease on %s/%s", self.bucket, key)
        if self._on_lost is None:
            return
        try:
            outcome = self._on_lost(key)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("on_lost failed for %s/%s", self.bucket, key)

    async def _reclaim(self, kv: KeyValue, key: str) -> int | None:
        """Take back an entry that holds our id under a revision we missed (our write whose
        answer was lost); the new revision, or ``None`` if the entry is someone else's."""
        revision = await self._own_revision(kv, key)
        if revision is None:
            return None
        try:
            return await kv.update(key, self._value, last=revision)
        except KeyWrongLastSequenceError:
            return None

    async def _own_revision(self, kv: KeyValue, key: str) -> int | None:
        entry = await self._entry(kv, key)
        return entry[0] if entry is not None and entry[1] == self._value else None

    async def _entry(self, kv: KeyValue, key: str) -> tuple[int, bytes] | None:
        """The key's revision and value, or ``None`` if it has none (never set, expired, or
        deleted)."""
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        if entry.revision is None:
            return None
        return entry.revision, entry.value or b""

    async def _open(self) -> KeyValue:
        """The bucket, created on first use; requests time out within a renewal interval."""
        if self._kv is None:
            async with self._opening:
                if self._kv is None:
                    self._kv = await self._ensure_bucket()
        return self._kv

    async def _ensure_bucket(self) -> KeyValue:
        """Create the bucket, or bring an existing one's TTL and copies to ours."""
        if not self.broker.is_connected:
            raise LeaseStoreUnavailable("not connected to NATS")
        js = self.broker.nc.jetstream(timeout=min(_MAX_REQUEST_SECONDS, self.renew_interval))
        config = KeyValueConfig(
            bucket=self.bucket,
            history=1,
            ttl=self.ttl_seconds,
            replicas=self.replicas,
            storage=StorageType.FILE,
        )
        try:
            return await js.create_key_value(config)
        except BadRequestError as exc:
            if exc.err_code != _STREAM_EXISTS_OTHERWISE:
                raise
        info = await js.stream_info(lease_stream(self.bucket))
        stream = info.config
        stream.max_age = self.ttl_seconds
        stream.num_replicas = self.replicas
        stream.max_msgs_per_subject = 1
        stream.duplicate_window = min(stream.duplicate_window or self.ttl_seconds, self.ttl_seconds)
        await js.update_stream(stream)
        log.info("brought the lease bucket %s to a TTL of %ss", self.bucket, self.ttl_seconds)
        return await js.key_value(self.bucket)
