"""The Kubernetes manifests as the deployment tests read them: both overlays rendered with
``kubectl kustomize``, the objects by kind and name, the containers of each component's
Deployment and migration Job, the environment each container gets, and the settings classes
that environment must build.

``kubectl`` must be installed (it is on CI); without it the tests that render fail rather than
skip, so a broken manifest cannot pass unnoticed.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from cxops.common.components import COMPONENTS, SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "production")

#: Settings whose defaults only suit a laptop: every deployment must set them.
MUST_SET_ALL = {"environment", "database_url", "signing_secret"}
MUST_SET_GATEWAY = {f"{service}_url" for service in SERVICES} | {"nats_url"}

Object = dict[str, Any]


def settings_class(component: str) -> type[BaseSettings]:
    module = importlib.import_module(f"cxops.{component}.settings")
    cls: type[BaseSettings] = getattr(module, f"{component.capitalize()}Settings")
    return cls


def render(overlay: str) -> list[Object]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed; it is needed to render k8s/ (kubectl kustomize)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[Object], kind: str) -> dict[str, Object]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def one(objects: list[Object], kind: str, name: str) -> Object:
    found = by_kind(objects, kind)
    assert name in found, f"no {kind} {name!r}; have {sorted(found)}"
    return found[name]


def container(pod_owner: Object, name: str) -> Object:
    containers: dict[str, Object] = {
        c["name"]: c for c in pod_owner["spec"]["template"]["spec"]["containers"]
    }
    assert name in containers, f"{pod_owner['metadata']['name']}: no container {name!r}"
    return containers[name]


def migration_job(objects: list[Object], component: str) -> Object:
    jobs = [
        job
        for job in by_kind(objects, "Job").values()
        if job["metadata"]["labels"].get("app.kubernetes.io/name") == component
    ]
    assert len(jobs) == 1, f"{component}: expected one migration Job, found {len(jobs)}"
    return jobs[0]


def pod_owners(objects: list[Object]) -> Iterator[tuple[str, Object, Object]]:
    """(component, Deployment or Job, its cxops container) for every workload rendered."""
    for component in COMPONENTS:
        deployment = one(objects, "Deployment", component)
        yield component, deployment, container(deployment, "app")
        job = migration_job(objects, component)
        yield component, job, container(job, "migrate")


def environment(objects: list[Object], workload: Object, ctr: Object) -> dict[str, str | None]:
    """The variables the container gets: literal values, ConfigMap values, and ``None`` for a
    value taken from a Secret (whose value is never in the repository) or from the pod itself
    (its address, through the downward API)."""
    env: dict[str, str | None] = {}
    configmaps = by_kind(objects, "ConfigMap")
    for source in ctr.get("envFrom", []):
        assert "configMapRef" in source, f"{workload['metadata']['name']}: envFrom {source}"
        name = source["configMapRef"]["name"]
        assert name in configmaps, f"{workload['metadata']['name']}: no ConfigMap {name}"
        env.update(configmaps[name]["data"])
    for var in ctr.get("env", []):
        if "valueFrom" in var:
            assert {"secretKeyRef"} == set(var["valueFrom"]) or var["valueFrom"] == {
                "fieldRef": {"fieldPath": "status.podIP"}
            }, var
            env[var["name"]] = None
        else:
            env[var["name"]] = var["value"]
    return env


def build_settings(cls: type, prefix: str, values: Mapping[str, str]) -> Any:
    """The settings class built, as the component builds it, from exactly these variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(prefix):
                patch.delenv(name)
        for name, value in values.items():
            patch.setenv(name, value)
        return cls()
