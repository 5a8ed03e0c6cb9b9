"""The Kubernetes manifests (``k8s/``) validate against the Kubernetes OpenAPI schemas, offline.

Every object that ``kubectl kustomize`` renders for an overlay, of a core API group, is checked
strictly (an unknown field, such as a misspelled ``livenesProbe``, is an error) with
``kubernetes-validate``, whose wheel ships the JSON schemas of each Kubernetes version: no
network and no cluster. Objects of other API groups (custom resources) have no schema there;
the overlays render none, and one that appears must be listed in ``NOT_VALIDATED`` with a
reason, so nothing goes unchecked silently.

The dependencies are checked as far as the bundled schemas allow: the CloudNativePG resources
are custom resources whose CRDs are not bundled, so they only have to parse as objects with an
``apiVersion``, ``kind`` and name; the NATS chart values are not an object at all, but the part
of them that the chart merges into the NATS container is validated as a container.

``kubectl`` must be installed (it is on CI); without it these tests fail rather than skip.
"""

from __future__ import annotations

import copy
from importlib.resources import files

import kubernetes_validate
import pytest
import yaml

from tests.support.manifests import K8S, OVERLAYS, Object, render

#: The Kubernetes version whose schemas the manifests must satisfy.
KUBERNETES_VERSION = "1.31"

#: API versions of the core groups, whose schemas ``kubernetes-validate`` bundles.
CORE_API_VERSIONS = frozenset(
    {
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "policy/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "storage.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
    }
)

#: Rendered objects of other API groups, by (apiVersion, kind), with why they are not validated.
#: The overlays render none today.
NOT_VALIDATED: dict[tuple[str, str], str] = {}

CNPG_API_VERSION = "postgresql.cnpg.io/v1"
CNPG_KINDS = {"Cluster", "Database"}


def describe(obj: Object) -> str:
    return f"{obj.get('apiVersion')} {obj.get('kind')} {obj.get('metadata', {}).get('name')!r}"


def schema_errors(obj: Object) -> list[str]:
    """What strict validation against the bundled schemas finds wrong with ``obj``."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.absolute_path) or "(top)"
        return [f"{describe(obj)}: at {path}: {error.message}"]
    except kubernetes_validate.utils.SchemaNotFoundError as error:
        return [f"{describe(obj)}: {error.message}"]
    return []


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    return request.param, render(request.param)


def test_the_schemas_are_bundled_for_the_version() -> None:
    schemas = files("kubernetes_validate") / "kubernetes-json-schema"
    strict = schemas / f"v{KUBERNETES_VERSION}.0-local-strict"
    assert strict.is_dir(), f"kubernetes-validate ships no strict schemas for {KUBERNETES_VERSION}"
    assert (strict / "deployment-apps-v1.json").is_file()


def test_every_core_object_validates_strictly(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    core = [o for o in objects if o["apiVersion"] in CORE_API_VERSIONS]
    assert core, f"{overlay} renders no object of a core kind"
    errors = [error for obj in core for error in schema_errors(obj)]
    assert not errors, f"{overlay}: {len(errors)} invalid object(s):\n" + "\n".join(errors)


def test_objects_of_other_api_groups_are_listed(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    others = {
        (o["apiVersion"], o["kind"]) for o in objects if o["apiVersion"] not in CORE_API_VERSIONS
    }
    unlisted = others - NOT_VALIDATED.keys()
    assert not unlisted, (
        f"{overlay} renders objects that no bundled schema covers: {sorted(unlisted)}; "
        "list them in NOT_VALIDATED with a reason, or add their group to CORE_API_VERSIONS"
    )


def test_a_misspelled_field_is_reported(rendered: tuple[str, list[Object]]) -> None:
    """The check is not a no-op: an unknown field in a rendered Deployment is an error."""
    _, objects = rendered
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    assert not schema_errors(deployment)
    ctr = deployment["spec"]["template"]["spec"]["containers"][0]
    ctr["livenesProbe"] = ctr.pop("livenessProbe")
    errors = schema_errors(deployment)
    assert len(errors) == 1
    assert "'livenesProbe' was unexpected" in errors[0]


def test_cloudnativepg_resources_parse_as_objects() -> None:
    docs = list(yaml.safe_load_all((K8S / "dependencies" / "postgres-cluster.yaml").read_text()))
    objects = [doc for doc in docs if doc is not None]
    assert objects
    for obj in objects:
        assert isinstance(obj, dict), f"not an object: {obj!r}"
        assert obj.get("apiVersion") == CNPG_API_VERSION, describe(obj)
        assert obj.get("kind") in CNPG_KINDS, describe(obj)
        assert obj.get("metadata", {}).get("name"), describe(obj)
        assert isinstance(obj.get("spec"), dict), describe(obj)
        # Their CRDs are not bundled: these cannot be validated against a schema here.
        with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_nats_container_settings_are_a_valid_container() -> None:
    values = yaml.safe_load((K8S / "dependencies" / "nats-values.yaml").read_text())
    assert isinstance(values, dict)
    merge = values["container"]["merge"]
    # The chart's env map: a value is a string, or a map such as {valueFrom: ...} (as in a Pod).
    env = [
        {"name": name, **value} if isinstance(value, dict) else {"name": name, "value": value}
        for name, value in values["container"]["env"].items()
    ]
    pod: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nats-0"},
        "spec": {"containers": [{"name": "nats", "image": "nats", "env": env, **merge}]},
    }
    errors = schema_errors(pod)
    assert not errors, "\n".join(errors)
