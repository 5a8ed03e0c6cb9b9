"""The NATS identities of the suite: one NKey per component, and the nats-server authorization
that lets each component do only what :mod:`cxops.common.events.permissions` allows it.

NKeys rather than passwords: the server's configuration holds only public keys (nothing in it
is secret, so no password is stored in plain text or as a hash), each component proves its
identity by signing the server's nonce with its seed, and the seed never leaves the component's
machine. The embedded runtime generates the seeds once under ``var/nats-credentials/`` (0600,
kept across restarts like ``var/signing-secret``); for production, ``cxops nats-keys`` makes the
same files for the Secrets and prints the public keys the server's configuration takes.
"""

import importlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import nkeys

from cxops.common.components import COMPONENTS, GATEWAY, SERVICES
from cxops.common.events.broker import WorkQueue
from cxops.common.events.permissions import (
    DurableConsumer,
    Permissions,
    gateway_permissions,
    service_permissions,
)

SEED_DIR = "nats-credentials"


class CredentialsError(RuntimeError):
    """A kept seed file is unusable."""


def seed_file(directory: Path, component: str) -> Path:
    return directory / f"{component}.nk"


def new_user_seed() -> bytes:
    """A fresh NKey user seed (``SU…``) from 32 random bytes."""
    seed: bytes = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    return seed


def public_key(seed: bytes) -> str:
    """The public key (``U…``) of a user seed; what the server's configuration names."""
    key: bytes = nkeys.from_seed(bytearray(seed)).public_key
    return key.decode()


def ensure_seed(path: Path) -> str:
    """The component's seed file, created on first use (0600) and kept afterwards; returns
    its public key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return public_key(path.read_bytes().strip())
        except Exception as exc:
            raise CredentialsError(f"{path} holds no NKey seed; delete it to make one") from exc
    seed = new_user_seed()
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(seed + b"\n")
    return public_key(seed)


def ensure_seeds(directory: Path) -> dict[str, str]:
    """Every component's seed under ``directory``; their public keys by component."""
    return {component: ensure_seed(seed_file(directory, component)) for component in COMPONENTS}


def service_consumers(service: str) -> list[DurableConsumer]:
    """The durable consumers a service binds, from its ``SPEC`` (imported: the command depends
    on every service)."""
    spec = importlib.import_module(f"cxops.{service}.app").SPEC
    return [DurableConsumer(stream=c.stream, name=f"{service}-{c.name}") for c in spec.consumers]


def service_lease_buckets(service: str) -> list[str]:
    """The key-value buckets a service keeps leases in, from its ``SPEC``."""
    return list(importlib.import_module(f"cxops.{service}.app").SPEC.lease_buckets)


def service_work_queues(service: str) -> list[WorkQueue]:
    """The work-queue streams a service takes work from, from its ``SPEC``."""
    return list(importlib.import_module(f"cxops.{service}.app").SPEC.work_queues)


def suite_permissions() -> dict[str, Permissions]:
    """Every component's permissions, as the code of the services declares its consumers and
    lease buckets."""
    consumers = {service: service_consumers(service) for service in SERVICES}
    permissions = {
        service: service_permissions(
            service,
            consumers[service],
            lease_buckets=service_lease_buckets(service),
            work_queues=service_work_queues(service),
        )
        for service in SERVICES
    }
    permissions[GATEWAY] = gateway_permissions(
        [consumer for service in SERVICES for consumer in consumers[service]]
    )
    return permissions


def authorization(public_keys: Mapping[str, str]) -> dict[str, object]:
    """nats-server's ``authorization`` block: one user per component, by public key. No user
    without a key, and no ``no_auth_user``: anonymous clients are refused."""
    permissions = suite_permissions()
    return {
        "users": [
            {"nkey": public_keys[component], "permissions": permissions[component].as_config()}
            for component in COMPONENTS
        ]
    }


def server_config(public_keys: Mapping[str, str]) -> str:
    """A nats-server configuration file holding only the authorization (the command line gives
    the rest). JSON is valid NATS configuration; quoted, ``$JS`` is a subject, not a variable."""
    return f"authorization: {json.dumps(authorization(public_keys), indent=2)}\n"


def public_key_variable(component: str) -> str:
    """The variable a production nats-server reads a component's public key from
    (``FEEDBACK_NATS_NKEY``): the keys belong to an installation, the permissions to the code."""
    return f"{component.upper()}_NATS_NKEY"


def server_config_from_environment() -> str:
    """:func:`server_config` with each public key an unquoted variable reference
    (``$FEEDBACK_NATS_NKEY``), which nats-server resolves from its environment: the
    configuration docker-compose.yml mounts (``deploy/nats/nats.conf``)."""
    config = server_config({c: f"${public_key_variable(c)}" for c in COMPONENTS})
    for component in COMPONENTS:
        variable = f"${public_key_variable(component)}"
        config = config.replace(f'"{variable}"', variable)
    return config
