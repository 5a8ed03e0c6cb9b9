"""The Kubernetes manifests (``k8s/``): both overlays render with ``kubectl kustomize`` and what
they render keeps the invariants the deployment relies on.

Offline and fast: nothing is applied to a cluster (``tests/support/manifests.py`` renders).

Settings stay one truth: every environment variable a manifest sets is read by that component's
settings class (its ``CXOPS_<COMPONENT>_`` prefix and a field of the class), and the rendered
values, with placeholder secrets, build a valid production configuration.
"""

from __future__ import annotations

import pytest
import yaml

from cxops.cli.nats_auth import authorization, public_key_variable
from cxops.common.components import COMPONENTS, GATEWAY, SERVICES, env_prefix
from tests.support.manifests import (
    K8S,
    MUST_SET_ALL,
    MUST_SET_GATEWAY,
    OVERLAYS,
    Object,
    build_settings,
    by_kind,
    container,
    environment,
    migration_job,
    one,
    pod_owners,
    render,
    settings_class,
)

NAMESPACE = "cxops"
PORT = 8000

#: A service's manifests must also set these (the chart runs three NATS nodes).
MUST_SET_SERVICE = {"nats_url", "stream_replicas"}
#: Every component connects to NATS, with an identity of its own.
MUST_SET_NATS = {"nats_url", "nats_nkey_seed"}

#: Placeholders for what the manifests take from Secrets, to build the settings.
SECRET_PLACEHOLDERS = {
    "DATABASE_URL": "postgresql+asyncpg://u:p@cxops-pg-rw.cxops-data.svc:5432/cxops",
    "SIGNING_SECRET": "x" * 48,
    "NATS_NKEY_SEED": "SU" + "A" * 56,
}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    return request.param, render(request.param)


def test_no_secret_values_are_rendered(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    assert not by_kind(objects, "Secret"), "Secrets are created in the cluster, never committed"


def test_everything_is_in_the_namespace_and_labelled(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    assert NAMESPACE in by_kind(objects, "Namespace")
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] != "Namespace":
            assert meta.get("namespace") == NAMESPACE, f"{obj['kind']} {meta['name']}"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "cxops", meta["name"]


def test_every_component_has_its_objects(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    for component in COMPONENTS:
        deployment = one(objects, "Deployment", component)
        pod = deployment["spec"]["template"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        assert selector["app.kubernetes.io/name"] == component

        account = one(objects, "ServiceAccount", component)
        assert account["automountServiceAccountToken"] is False
        assert pod["spec"]["serviceAccountName"] == component

        service = one(objects, "Service", component)
        assert service["spec"]["selector"] == selector
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(PORT, "http")]

        hpa = one(objects, "HorizontalPodAutoscaler", component)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": component,
        }
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

        pdb = one(objects, "PodDisruptionBudget", component)
        assert pdb["spec"]["selector"]["matchLabels"] == selector

        one(objects, "NetworkPolicy", component)


def test_deployments_are_probed_bounded_and_hardened(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    for component, workload, ctr in pod_owners(objects):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] == 10001, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        security = ctr["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        assert {"name": "tmp", "mountPath": "/tmp"} in ctr["volumeMounts"], where
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"]), where
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= ctr["resources"][bound].keys(), f"{where}: {bound}"
        assert ctr["image"].startswith(f"ghcr.io/cxops/{component}:"), where

        if workload["kind"] == "Deployment":
            assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, where
            assert ctr["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, where
            assert ctr["startupProbe"]["httpGet"]["port"] == "http", where
            assert {"name": "http", "containerPort": PORT} in ctr["ports"], where
            assert ctr["command"][:3] == [
                "uvicorn",
                f"cxops.{component}.app:create_app",
                "--factory",
            ]


def test_journey_keeps_its_files_on_a_volume_its_replicas_share(
    rendered: tuple[str, list[Object]],
) -> None:
    """An upload lands on one replica and its job may run on another; the root filesystem is
    read-only, so without the claim nowhere could hold the files."""
    _, objects = rendered
    deployment = one(objects, "Deployment", "journey")
    app = container(deployment, "app")
    data_dir = environment(objects, deployment, app)["CXOPS_JOURNEY_DATA_DIR"]
    [mount] = [m for m in app["volumeMounts"] if m["mountPath"] == data_dir]
    [volume] = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    claim = one(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_a_migration_job_runs_the_same_image_before_each_version(
    rendered: tuple[str, list[Object]],
) -> None:
    _, objects = rendered
    for component in COMPONENTS:
        server = container(one(objects, "Deployment", component), "app")
        job = migration_job(objects, component)
        migrate = container(job, "migrate")
        assert migrate["command"] == ["python", "-m", "cxops.common.migrate", component]
        prefix = env_prefix(component)
        assert environment(objects, job, migrate) == {f"{prefix}DATABASE_URL": None}, (
            "the migration reads only its database URL, from the same Secret as the server"
        )
        assert migrate["env"] == container(one(objects, "Deployment", component), "app")["env"][:1]
        assert migrate["image"] == server["image"], "the Job migrates for the version that rolls"
        tag = server["image"].rpartition(":")[2]
        assert job["metadata"]["name"] == f"{component}-migrate-{tag}"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
            "migration"
        ), "migration pods must not match the Service's selector"


def test_environment_is_what_the_settings_read(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    for component, workload, ctr in pod_owners(objects):
        if workload["kind"] != "Deployment":
            continue  # the migration Job: see test_a_migration_job_runs_the_same_image...
        where = f"{workload['kind']} {workload['metadata']['name']}"
        cls = settings_class(component)
        prefix = env_prefix(component)
        assert cls.model_config.get("env_prefix") == prefix
        env = environment(objects, workload, ctr)

        fields = set(cls.model_fields)
        if component == "routing":  # the pod's address only composes INSTANCE_URL
            assert env.pop(f"{prefix}POD_IP") is None, where
            assert env[f"{prefix}INSTANCE_URL"] == f"http://$({prefix}POD_IP):{PORT}", where
        for name in env:
            assert name.startswith(prefix), f"{where}: {name} is not read by {cls.__name__}"
            assert name[len(prefix) :].lower() in fields, f"{where}: {cls.__name__} has no {name}"

        set_fields = {name[len(prefix) :].lower() for name in env}
        required = {name for name, field in cls.model_fields.items() if field.is_required()}
        must = required | MUST_SET_ALL | MUST_SET_NATS
        must |= MUST_SET_GATEWAY if component == GATEWAY else set()
        if component in SERVICES:
            must |= MUST_SET_SERVICE
        assert must <= set_fields, f"{where}: {sorted(must - set_fields)} not set"
        assert env[f"{prefix}ENVIRONMENT"] == "production", where
        for secret in SECRET_PLACEHOLDERS:
            assert env[f"{prefix}{secret}"] is None, f"{where}: {secret} must come from a Secret"

        # The rendered values, with placeholder secrets, make a valid production configuration.
        values = {
            name: value if value is not None else SECRET_PLACEHOLDERS[name[len(prefix) :]]
            for name, value in env.items()
        }
        settings = build_settings(cls, prefix, values)
        assert settings.environment == "production"
        assert settings.nats_url.startswith("nats://nats.cxops-data.svc"), where
        (seed,) = [v for v in ctr["env"] if v["name"] == f"{prefix}NATS_NKEY_SEED"]
        assert seed["valueFrom"]["secretKeyRef"] == {
            "name": f"cxops-{component}-nats",
            "key": "nkey-seed",
        }, f"{where}: its own NATS identity, from its own Secret"
        if component == GATEWAY:
            services = by_kind(objects, "Service")
            for service in SERVICES:
                assert getattr(settings, f"{service}_url") == f"http://{service}:{PORT}"
                assert service in services
        else:
            expected = 1 if overlay == "dev" else 3
            assert settings.stream_replicas == expected, where


def test_network_policies_let_only_the_gateway_reach_the_services(
    rendered: tuple[str, list[Object]],
) -> None:
    _, objects = rendered
    policies = by_kind(objects, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny

    def egress_ports(policy: Object) -> set[int]:
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}

    gateway_pods = {"app.kubernetes.io/name": GATEWAY, "app.kubernetes.io/component": "server"}
    for service in SERVICES:
        policy = policies[service]
        own_pods = {"app.kubernetes.io/name": service}
        assert policy["spec"]["podSelector"]["matchLabels"] == own_pods
        (ingress,) = policy["spec"]["ingress"]
        callers = [{"podSelector": {"matchLabels": gateway_pods}}]
        expected_egress = {53, 4222, 5432}
        if service == "routing":  # replicas forward a tenant's calls to the one that owns it
            callers.append({"podSelector": {"matchLabels": own_pods}})
            expected_egress.add(PORT)
            (to_replicas,) = [
                r
                for r in policy["spec"]["egress"]
                if r.get("ports") == [{"protocol": "TCP", "port": PORT}]
            ]
            assert to_replicas["to"] == [{"podSelector": {"matchLabels": own_pods}}]
        assert ingress["from"] == callers
        assert ingress["ports"] == [{"protocol": "TCP", "port": PORT}]
        assert expected_egress == egress_ports(policy), service

    gateway = policies[GATEWAY]
    peers = [peer for rule in gateway["spec"]["egress"] for peer in rule["to"]]
    reached = {
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
        for peer in peers
        if "podSelector" in peer and "namespaceSelector" not in peer
    }
    assert reached == set(SERVICES)
    # NATS for webhooks and the event stream; HTTPS out to webhook receivers.
    assert {53, 4222, 5432, 443, PORT} == egress_ports(gateway)
    internet = [peer["ipBlock"] for peer in peers if "ipBlock" in peer]
    assert {block["cidr"] for block in internet} == {"0.0.0.0/0", "::/0"}
    for block in internet:
        assert {"10.0.0.0/8", "169.254.0.0/16", "fc00::/7"} & set(block["except"]), block
    (https,) = [rule for rule in gateway["spec"]["egress"] if "ipBlock" in rule["to"][0]]
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]


def test_production_keeps_two_of_everything(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    if overlay != "production":
        return
    for component in COMPONENTS:
        assert one(objects, "Deployment", component)["spec"]["replicas"] >= 2
        hpa = one(objects, "HorizontalPodAutoscaler", component)["spec"]
        assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] >= 10
        assert one(objects, "PodDisruptionBudget", component)["spec"]["minAvailable"] == 1
        image = container(one(objects, "Deployment", component), "app")["image"]
        assert not image.endswith((":latest", ":dev")), f"{component}: pin the image tag"


def test_dependencies_are_configured_as_their_charts_expect() -> None:
    nats = yaml.safe_load((K8S / "dependencies" / "nats-values.yaml").read_text())
    assert nats["config"]["cluster"] == {"enabled": True, "replicas": 3}
    jetstream = nats["config"]["jetstream"]
    assert jetstream["enabled"] and jetstream["fileStore"]["pvc"]["enabled"]
    probe = nats["container"]["merge"]["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz?js-enabled-only=true"
    # NATS is not open: the users and permissions are the ones the code derives, each public key
    # read from the ConfigMap `cxops nats-keys` fills.
    variables = {component: public_key_variable(component) for component in COMPONENTS}
    expected = authorization({c: f"<< ${name} >>" for c, name in variables.items()})
    assert nats["config"]["merge"]["authorization"] == expected, (
        "nats-values.yaml's authorization differs from cxops.common.events.permissions"
    )
    for name in variables.values():
        assert nats["container"]["env"][name] == {
            "valueFrom": {"configMapKeyRef": {"name": "cxops-nats-users", "key": name}}
        }

    documents = list(
        yaml.safe_load_all((K8S / "dependencies" / "postgres-cluster.yaml").read_text())
    )
    (cluster,) = [d for d in documents if d["kind"] == "Cluster"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 3
    roles = {role["name"] for role in cluster["spec"]["managed"]["roles"]}
    databases = {
        d["spec"]["name"]: d["spec"]["owner"] for d in documents if d["kind"] == "Database"
    }
    assert roles == set(COMPONENTS)
    assert databases == {f"cxops_{component}": component for component in COMPONENTS}


def test_the_overlays_name_migration_jobs_alike() -> None:
    """Kustomize loads files only from inside an overlay, so each keeps a copy: keep them equal."""
    copies = {(K8S / "overlays" / o / "migration-job-names.yaml").read_text() for o in OVERLAYS}
    assert len(copies) == 1
