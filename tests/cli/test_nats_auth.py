"""The suite's NATS identities: seeds kept, and permissions derived from the services' code."""

import importlib
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.cli.nats_auth import (
    CredentialsError,
    ensure_seed,
    public_key,
    server_config,
    service_consumers,
    suite_permissions,
)
from cxops.common.components import COMPONENTS, GATEWAY, SERVICES
from cxops.common.events.consumer import Consumer


def test_a_seed_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "creds" / "feedback.nk"
    key = ensure_seed(path)
    assert key.startswith("U") and public_key(path.read_bytes().strip()) == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_seed(path) == key
    path.write_text("not a seed")
    with pytest.raises(CredentialsError, match="delete it"):
        ensure_seed(path)


def test_durable_names_are_the_consumers_own() -> None:
    """The permissions name each durable consumer as the consumer code names it."""
    for service in SERVICES:
        spec = importlib.import_module(f"cxops.{service}.app").SPEC
        expected = [
            Consumer(c, service=service, db=None, broker=None).durable  # type: ignore[arg-type]
            for c in spec.consumers
        ]
        assert [c.name for c in service_consumers(service)] == expected


def test_each_component_publishes_only_its_own_subjects() -> None:
    permissions = suite_permissions()
    assert set(permissions) == set(COMPONENTS)
    for component, allowed in permissions.items():
        events = [s for s in allowed.publish if s.startswith("cx.")]
        assert events == [f"cx.{component}.>", f"cx.deadletter.{component}.>"]
        assert not any(s.startswith("$JS.API.STREAM.DELETE") for s in allowed.publish)
        assert not any(s.startswith("$JS.API.STREAM.PURGE") for s in allowed.publish)
        assert allowed.subscribe == (f"_INBOX.cxops-{component}.>",)
    scorecard = permissions["scorecard"].publish
    assert "$JS.API.CONSUMER.MSG.NEXT.CX_FEEDBACK.scorecard-feedback-responses" in scorecard
    denied = permissions[GATEWAY].publish_deny
    for service in SERVICES:
        for consumer in service_consumers(service):
            assert f"$JS.API.CONSUMER.DELETE.{consumer.stream}.{consumer.name}" in denied


def test_only_routing_may_use_its_lease_bucket_and_only_that() -> None:
    """Routing declares its owners bucket; its user gets exactly what nats-py's key-value calls
    need there, and no component gets anything of a bucket it did not declare."""
    permissions = suite_permissions()
    kv = "KV_cxops_routing_owners"
    assert [s for s in permissions["routing"].publish if "KV" in s] == [
        f"$JS.API.STREAM.INFO.{kv}",
        f"$JS.API.STREAM.CREATE.{kv}",
        f"$JS.API.STREAM.UPDATE.{kv}",
        "$KV.cxops_routing_owners.>",
        f"$JS.API.STREAM.MSG.GET.{kv}",
        f"$JS.API.DIRECT.GET.{kv}.$KV.cxops_routing_owners.>",
    ]
    for component in set(COMPONENTS) - {"routing"}:
        assert not [s for s in permissions[component].publish if "KV" in s], component


def test_the_server_configuration_names_public_keys_only() -> None:
    keys = {component: f"U{component.upper()}KEY" for component in COMPONENTS}
    config = server_config(keys)
    assert config.startswith("authorization: {")
    assert all(f'"nkey": "{key}"' in config for key in keys.values())
    assert "password" not in config and "no_auth_user" not in config


def test_nats_keys_makes_the_seeds_once_and_prints_what_env_and_the_chart_take(
    tmp_path: Path,
) -> None:
    first = CliRunner().invoke(app, ["nats-keys", str(tmp_path / "nats"), "--seeds"])
    assert first.exit_code == 0, first.output
    lines = dict(line.split("=", 1) for line in first.stdout.splitlines())
    for component in COMPONENTS:
        seed = (tmp_path / "nats" / f"{component}.nk").read_text().strip()
        assert lines[f"{component.upper()}_NATS_SEED"] == seed
        assert lines[f"{component.upper()}_NATS_NKEY"] == public_key(seed.encode())
    again = CliRunner().invoke(app, ["nats-keys", str(tmp_path / "nats")])
    assert again.stdout.splitlines() == [f"{n}={v}" for n, v in lines.items() if "NKEY" in n]
