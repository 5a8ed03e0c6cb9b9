"""Policy checks with checkov on what is deployed: the ``Dockerfile``, what both kustomize overlays
render, and ``docker-compose.yml``.

``test_kustomize.py`` and ``test_compose.py`` check the invariants this project relies on; checkov
adds the general hardening rules (privileges, probes, limits, base image tags, written-in
secrets...). A rule that does not fit is skipped in ``.checkov.yaml``, with its reason, and only
there: an inline suppression fails these tests.

checkov has no docker-compose framework, so the compose file gets its secret scan (no credential
written into it); since that scan reports failures only, a copy with a planted password proves
that it runs. checkov takes seconds to start, so one run covers every target, offline.

checkov pins old versions of packages the services use, so it is not in ``uv.lock``: ``make test``
installs it into ``.tools/`` (a uv tool environment of its own); one on ``PATH`` also serves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.manifests import OVERLAYS, ROOT, render

CONFIG = ROOT / ".checkov.yaml"
FRAMEWORKS = ("kubernetes", "dockerfile", "secrets")
#: Offline: no version check on PyPI; the config file's ``skip-download`` keeps checkov from the
#: Prisma Cloud platform, and without an API key nothing is uploaded.
OFFLINE_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}
COMPOSE = "docker-compose.yml"
CHECKED = ("Dockerfile", *(f"k8s/overlays/{overlay}" for overlay in OVERLAYS))

Check = dict[str, Any]


def checkov() -> str:
    installed = ROOT / ".tools" / "bin" / "checkov"
    found = str(installed) if installed.exists() else shutil.which("checkov")
    if found is None:
        pytest.fail("checkov is not installed: `make test` installs it into .tools/")
    return found


@dataclass
class FileResults:
    passed: list[Check] = field(default_factory=list)
    failed: list[Check] = field(default_factory=list)
    skipped: list[Check] = field(default_factory=list)


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What is scanned, by name: the repository's files, each overlay rendered into a file, and a
    copy of the compose file with a password written in."""
    work = tmp_path_factory.mktemp("policy")
    files = {"Dockerfile": ROOT / "Dockerfile", COMPOSE: ROOT / COMPOSE}
    for overlay in OVERLAYS:
        rendered = work / f"{overlay}.yaml"
        rendered.write_text(yaml.safe_dump_all(render(overlay)))
        files[f"k8s/overlays/{overlay}"] = rendered
    password = base64.b64encode(hashlib.sha256(b"cxops policy canary").digest()).decode()
    compose = (ROOT / COMPOSE).read_text()
    reference = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    assert reference in compose, "the canary needs compose's POSTGRES_PASSWORD reference"
    canary = work / "canary" / COMPOSE
    canary.parent.mkdir()
    canary.write_text(compose.replace(reference, password))
    files["canary"] = canary
    return files


@pytest.fixture(scope="module")
def results(targets: dict[str, Path]) -> dict[Path, FileResults]:
    """One checkov run over every target: its results by file."""
    env = {**os.environ, **OFFLINE_ENV}
    env.pop("BC_API_KEY", None)
    command = [checkov(), "--config-file", str(CONFIG)]
    command += ["--framework", *FRAMEWORKS, "--output", "json", "--compact"]
    for path in targets.values():
        command += ["--file", str(path)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    # 1 is "some check failed": the canary always does.
    assert run.returncode in (0, 1), f"checkov exited {run.returncode}:\n{run.stderr}"
    reports = json.loads(run.stdout)

    by_file: dict[Path, FileResults] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        found = report.get("results", {})
        assert not found.get("parsing_errors"), f"checkov could not parse {found['parsing_errors']}"
        for kind in ("passed", "failed", "skipped"):
            for check in found.get(f"{kind}_checks", []):
                file_results = by_file.setdefault(Path(check["file_abs_path"]), FileResults())
                getattr(file_results, kind).append(check)
    return by_file


def describe(checks: list[Check]) -> str:
    return "\n".join(
        f"  {c['check_id']} {c['check_name']}: {c['resource']} "
        f"({c['file_abs_path']}, lines {c['file_line_range']})"
        for c in checks
    )


@pytest.mark.parametrize("target", CHECKED)
def test_passes_checkov(
    target: str, targets: dict[str, Path], results: dict[Path, FileResults]
) -> None:
    found = results.get(targets[target], FileResults())
    assert not found.failed, (
        f"{target} fails checkov (fix it, or skip the rule in .checkov.yaml with its reason):\n"
        + describe(found.failed)
    )
    assert found.passed, f"checkov ran no check on {target}"
    assert not found.skipped, (
        f"{target} suppresses checkov rules inline; skip them in .checkov.yaml, with the reason:\n"
        + describe(found.skipped)
    )


def test_compose_has_no_secret_written_in(
    targets: dict[str, Path], results: dict[Path, FileResults]
) -> None:
    found = results.get(targets[COMPOSE], FileResults())
    assert not found.failed, f"{COMPOSE}: secrets written in:\n" + describe(found.failed)
    assert not found.skipped, f"{COMPOSE} suppresses checkov rules inline:\n" + describe(
        found.skipped
    )


def test_the_secret_scan_catches_a_password_written_into_compose(
    targets: dict[str, Path], results: dict[Path, FileResults]
) -> None:
    found = results.get(targets["canary"], FileResults())
    assert found.failed, "checkov's secret scan did not flag the planted password"
