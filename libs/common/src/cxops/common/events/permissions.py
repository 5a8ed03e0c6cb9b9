"""What each component may do on NATS: the permissions its NATS user gets, derived from the
event conventions (one stream per publisher, ``cx.<component>.>`` subjects, dead letters under
``cx.deadletter.<component>.>``, durable consumers named ``<component>-<name>``, reply inboxes
under ``_INBOX.cxops-<component>``), so that a component can publish only its own events.

Publishing is an allow-list of exact subjects: a component's own events and dead letters, and
the JetStream API requests that nats-py makes for what the component does, each naming the
stream (and consumer) it is about. Nothing else is allowed, so no component can delete or purge
a stream, create or update another's stream, move another's consumer, or publish into another's
stream. Subscribing is allowed only on the component's own reply inboxes: what it reads from
JetStream arrives there, and no one can listen in on another's replies.

The gateway reads every stream (webhooks, the live event stream, dead letters) with consumers of
its own, durable or ephemeral, whose names it chooses: it may create and read consumers on every
stream, except the services' own durable consumers, which are denied to it by name.

The embedded runtime (``cxops up``) writes these into its nats-server configuration; the
production configurations (``k8s/dependencies/nats-values.yaml``, ``deploy/nats/nats.conf``)
spell them out and ``tests/deploy`` holds them equal to what this module derives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from nats.js.object_store import VALID_BUCKET_RE

from cxops.common.components import GATEWAY, SERVICES
from cxops.common.events.broker import (
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    WorkQueue,
    client_name,
    inbox_prefix,
    stream_name,
)
from cxops.common.events.lease import lease_bucket, lease_stream, lease_subjects

API = "$JS.API"


@dataclass(frozen=True)
class DurableConsumer:
    """A durable consumer a component binds: its stream and its name (``<component>-<name>``)."""

    stream: str
    name: str


@dataclass(frozen=True)
class Permissions:
    """A NATS user's ``permissions`` block: subjects it may publish to (``deny`` wins over
    ``allow``), and subjects it may subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = field(default=())

    def as_config(self) -> dict[str, object]:
        """As nats-server's configuration (and the chart's values) spell it."""
        publish: dict[str, object] = {"allow": list(self.publish)}
        if self.publish_deny:
            publish["deny"] = list(self.publish_deny)
        return {"publish": publish, "subscribe": {"allow": list(self.subscribe)}}


def _own(component: str) -> list[str]:
    """What every component may publish: its events and dead letters, and the provisioning of
    its own stream and of the shared dead-letter stream (created or updated by whoever connects
    first)."""
    allowed = [f"cx.{component}.>", f"{DEAD_LETTER_PREFIX}.{component}.>"]
    for stream in (stream_name(component), DEAD_LETTER_STREAM):
        allowed += [f"{API}.STREAM.{action}.{stream}" for action in ("INFO", "CREATE", "UPDATE")]
    return allowed


def _durable(consumer: DurableConsumer) -> list[str]:
    """Create (nats-py's ``add_consumer`` with a durable name), look up, fetch from and
    acknowledge (ack, nak, term) on one durable consumer."""
    stream, name = consumer.stream, consumer.name
    return [
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{name}",
        f"{API}.CONSUMER.INFO.{stream}.{name}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
    ]


def _lease_bucket(component: str, bucket: str) -> list[str]:
    """What :class:`~cxops.common.events.lease.Leases` asks of NATS for one bucket: the stream
    behind it created, looked up and brought to its configuration (nats-py's
    ``create_key_value``, ``key_value``), its keys written (``create``, ``update``, ``delete``
    publish to ``$KV.<bucket>.<key>``), and read (``get``: a message get on the stream, or a
    direct get of a key's last value when the bucket allows direct gets). Nothing else: no
    delete or purge of the stream, no watchers, no get by revision. Only a bucket named for
    ``component``."""
    prefix = lease_bucket(component, "")
    if not (bucket.startswith(prefix) and bucket != prefix and VALID_BUCKET_RE.fullmatch(bucket)):
        raise ValueError(f"{component} may keep leases only in {lease_bucket(component, '*')}")
    stream = lease_stream(bucket)
    return [
        *(f"{API}.STREAM.{action}.{stream}" for action in ("INFO", "CREATE", "UPDATE")),
        lease_subjects(bucket),
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.{lease_subjects(bucket)}",
    ]


def _work_queue(service: str, queue: WorkQueue) -> list[str]:
    """A work-queue stream created, looked up and brought to its configuration, its items
    published, and its one durable consumer (whose ``in_progress`` is an ack too). Only a
    queue named for ``service``."""
    if not (
        queue.stream.startswith(f"{stream_name(service)}_")
        and queue.consumer.startswith(f"{service}-")
        and all(subject.split(".")[1:2] == [service] for subject in queue.subjects)
    ):
        raise ValueError(f"{service} may use only work queues named for it, not {queue}")
    return [
        *(f"{API}.STREAM.{action}.{queue.stream}" for action in ("INFO", "CREATE", "UPDATE")),
        *queue.subjects,
        *_durable(DurableConsumer(stream=queue.stream, name=queue.consumer)),
    ]


def service_permissions(
    service: str,
    consumers: Iterable[DurableConsumer],
    lease_buckets: Iterable[str] = (),
    work_queues: Iterable[WorkQueue] = (),
) -> Permissions:
    """A service: its own events, its durable consumers, its lease buckets, its work queues,
    and reading its own dead letters (an ephemeral consumer filtered on
    ``cx.deadletter.<service>.>``, named by nats-py)."""
    allowed = _own(service)
    for consumer in consumers:
        allowed += _durable(consumer)
    for bucket in lease_buckets:
        allowed += _lease_bucket(service, bucket)
    for queue in work_queues:
        allowed += _work_queue(service, queue)
    dead_letters = f"{DEAD_LETTER_PREFIX}.{service}.>"
    allowed += [
        f"{API}.CONSUMER.CREATE.{DEAD_LETTER_STREAM}.*.{dead_letters}",
        f"{API}.CONSUMER.MSG.NEXT.{DEAD_LETTER_STREAM}.*",
    ]
    return Permissions(
        publish=tuple(allowed), subscribe=(f"{inbox_prefix(client_name(service))}.>",)
    )


def readable_streams() -> tuple[str, ...]:
    """Every stream of the suite: the services', the gateway's own and the dead letters."""
    return (*(stream_name(s) for s in SERVICES), stream_name(GATEWAY), DEAD_LETTER_STREAM)


def gateway_permissions(service_consumers: Iterable[DurableConsumer]) -> Permissions:
    """The gateway: its own events (``cx.gateway.>``), and reading every stream with consumers
    of its own: durable or ephemeral, pull or push (ordered consumers, with flow control), but
    never one of ``service_consumers``."""
    allowed = _own(GATEWAY)
    for stream in readable_streams():
        allowed += [
            f"{API}.STREAM.INFO.{stream}",
            f"{API}.CONSUMER.CREATE.{stream}",
            f"{API}.CONSUMER.CREATE.{stream}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.*",
            f"{API}.CONSUMER.INFO.{stream}.*",
            f"{API}.CONSUMER.DELETE.{stream}.*",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.*",
            f"$JS.ACK.{stream}.>",
            f"$JS.FC.{stream}.>",
        ]
    denied: list[str] = []
    for consumer in service_consumers:
        stream, name = consumer.stream, consumer.name
        denied += [
            f"{API}.CONSUMER.CREATE.{stream}.{name}",
            f"{API}.CONSUMER.CREATE.{stream}.{name}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{name}",
            f"{API}.CONSUMER.DELETE.{stream}.{name}",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.{name}",
            f"$JS.ACK.{stream}.{name}.>",
        ]
    return Permissions(
        publish=tuple(dict.fromkeys(allowed)),
        subscribe=(f"{inbox_prefix(client_name(GATEWAY))}.>",),
        publish_deny=tuple(denied),
    )
