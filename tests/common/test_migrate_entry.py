"""The images' migration step, ``python -m cxops.common.migrate COMPONENT``, and the gateway's
first key, ``python -m cxops.gateway.create_key``, run as the containers run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxops.feedback.settings import FeedbackSettings
from cxops.gateway.settings import GatewaySettings
from cxops.journey.settings import JourneySettings
from cxops.routing.settings import RoutingSettings
from cxops.scorecard.settings import ScorecardSettings

SETTINGS = {
    "gateway": GatewaySettings,
    "feedback": FeedbackSettings,
    "routing": RoutingSettings,
    "scorecard": ScorecardSettings,
    "journey": JourneySettings,
}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CXOPS_")}
    return subprocess.run(
        [sys.executable, "-m", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("component", sorted(SETTINGS))
def test_the_variable_is_the_one_the_component_reads(component: str) -> None:
    assert SETTINGS[component].model_config["env_prefix"] == f"CXOPS_{component.upper()}_"


def test_migrate_then_create_the_first_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    env = {"CXOPS_GATEWAY_DATABASE_URL": url}
    refused = run("cxops.gateway.create_key", "--tenant", "acme", "--role", "admin", env=env)
    assert refused.returncode == 1 and "migrat" in refused.stderr
    migrated = run("cxops.common.migrate", "gateway", env=env)
    assert migrated.returncode == 0, migrated.stderr
    again = run("cxops.common.migrate", "gateway", env=env)
    assert again.returncode == 0 and "latest revision" in again.stdout
    created = run("cxops.gateway.create_key", "--tenant", "acme", "--role", "admin", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("cxk_") and len(created.stdout.splitlines()) == 1


def test_migrating_each_backend(database_url: str) -> None:
    migrated = run(
        "cxops.common.migrate", "feedback", env={"CXOPS_FEEDBACK_DATABASE_URL": database_url}
    )
    assert migrated.returncode == 0, migrated.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["feedback"], "CXOPS_FEEDBACK_DATABASE_URL is not set"),
        (["nope"], "no component 'nope'"),
        ([], "usage"),
    ],
)
def test_refusals(args: list[str], message: str) -> None:
    refused = run("cxops.common.migrate", *args, env={})
    assert refused.returncode == 2 and message in refused.stderr
