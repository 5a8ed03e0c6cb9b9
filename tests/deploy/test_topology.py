"""The production topology, live: a 3-node NATS JetStream cluster with streams at 3 replicas,
PostgreSQL with a database per component, each migration Job and each component run as a
process of its own with the production overlay's commands and settings (only places and secrets
differ). The feedback → scorecard flow goes on while a NATS node and a service are killed and
brought back: nothing is lost and nothing is counted twice.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from cxops.cli.nats_auth import seed_file
from cxops.cli.supervisor import Ports, SuiteConfig
from cxops.common.components import COMPONENTS, SERVICES, env_prefix
from cxops.common.events.broker import DEAD_LETTER_STREAM, client_name, inbox_prefix, stream_name
from tests.support.flow import (
    client_for,
    metric,
    post_responses,
    wait_for_responses,
    wait_until_counting,
)
from tests.support.manifests import container, environment, migration_job, one, render
from tests.support.postgres import PostgresServer
from tests.support.services import eventually
from tests.support.suite import postgres_database_urls
from tests.support.topology import PLACES_AND_SECRETS, NatsCluster, ProductionTopology, Workload

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

TENANT = "production-topology"
#: One API key per batch: a batch fits the production rate limit's burst (100), unthrottled.
BATCH = 100


@pytest.fixture(scope="module")
def workloads() -> dict[str, Workload]:
    """Each component's Deployment and migration Job, as the production overlay renders them."""
    objects = render("production")
    workloads = {}
    for component in COMPONENTS:
        deployment = one(objects, "Deployment", component)
        server = container(deployment, "app")
        job = migration_job(objects, component)
        migrate = container(job, "migrate")
        workloads[component] = Workload(
            server_command=server["command"],
            server_env=environment(objects, deployment, server),
            migrate_command=migrate["command"],
            migrate_env=environment(objects, job, migrate),
        )
    return workloads


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats", seed_dir=tmp_path / "nats-credentials").start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def topology(
    tmp_path: Path,
    postgres_server: PostgresServer,
    nats_cluster: NatsCluster,
    workloads: dict[str, Workload],
) -> Iterator[ProductionTopology]:
    config = SuiteConfig(
        var_dir=tmp_path / "suite",
        ports=Ports.free(),
        database_urls=postgres_database_urls(postgres_server),
        nats_url=nats_cluster.url,
        nats_credentials=nats_cluster.seed_dir,
        environment="production",
        ready_timeout=120,
    )
    suite = ProductionTopology(config, workloads)
    try:
        yield suite
    finally:
        suite.stop()


def test_only_places_and_secrets_differ_from_the_manifests(
    topology: ProductionTopology, workloads: dict[str, Workload]
) -> None:
    for component in COMPONENTS:
        manifest = workloads[component].server_env
        prefix = env_prefix(component)
        running = {k: v for k, v in topology.spec(component).env.items() if k.startswith(prefix)}
        assert running.keys() == manifest.keys()
        differing = {name for name in manifest if running[name] != manifest[name]}
        assert {name.removeprefix(prefix) for name in differing} <= PLACES_AND_SECRETS
        assert running[f"{prefix}ENVIRONMENT"] == "production"
        assert running[f"{prefix}NATS_URL"] == topology.nats_url
        if component != "gateway":
            assert running[f"{prefix}STREAM_REPLICAS"] == "3"


async def test_flow_survives_a_nats_node_and_a_service_killed_and_restarted(
    topology: ProductionTopology, nats_cluster: NatsCluster
) -> None:
    await nats_cluster.wait_for_jetstream()
    await asyncio.to_thread(topology.start)
    await assert_streams_replicated(nats_cluster, replicas=3)
    keys = [
        topology.create_api_key(tenant=TENANT, role="integration", name=f"batch-{i}")
        for i in range(3)
    ]

    async with client_for(topology, keys[0]) as client:
        assert await post_responses(client, BATCH) == [201] * BATCH
        await wait_for_responses(client, BATCH, timeout=60)

    # The node leading the feedback stream dies: a new leader is elected among the other two,
    # services connected to it reconnect elsewhere, and publishing and consuming go on.
    leader = (await nats_cluster.stream_info("CX_FEEDBACK")).cluster.leader
    node = nats_cluster.node(leader)
    node.stop(kill=True)
    async with client_for(topology, keys[1]) as client:
        assert await post_responses(client, BATCH) == [201] * BATCH
        await wait_for_responses(client, 2 * BATCH, timeout=90)
    node.start()

    # The scorecard process dies while it consumes; what it had fetched but not acknowledged is
    # delivered again once the ack wait passes, and counted once.
    async with client_for(topology, keys[2]) as client:
        posting = asyncio.create_task(post_responses(client, BATCH, concurrency=5))
        await wait_until_counting(client, at_least=2 * BATCH + 1)
        await asyncio.to_thread(topology.kill, "scorecard")
        assert await posting == [201] * BATCH
        await asyncio.to_thread(topology.start_process, "scorecard")
        await wait_for_responses(client, 3 * BATCH, timeout=120)
        await asyncio.sleep(2)  # a late duplicate would show now
        assert (await metric(client))["responses"] == 3 * BATCH

    await wait_until_replicas_current(nats_cluster, "CX_FEEDBACK", node=leader)
    assert topology.exited() == [], [topology.failure_report(n) for n in topology.exited()]


async def assert_streams_replicated(cluster: NatsCluster, *, replicas: int) -> None:
    """Every service's stream, and the dead-letter stream, at ``replicas`` copies. A service is
    ready before it has provisioned its streams (intake goes to the outbox), so this waits."""
    expected = {stream_name(service) for service in SERVICES} | {DEAD_LETTER_STREAM}

    async def replicated() -> bool:
        streams = {stream.config.name: stream for stream in await cluster.streams_info(expected)}
        for name, stream in streams.items():
            assert stream.config.num_replicas == replicas, name
            assert stream.cluster is not None, name
            assert len(stream.cluster.replicas or []) == replicas - 1, name
        return True

    await eventually(replicated, what=f"every stream at {replicas} replicas", within=60)


async def wait_until_replicas_current(cluster: NatsCluster, stream: str, *, node: str) -> None:
    """The restarted node has caught up: it is a current replica (or the leader) again."""

    async def current() -> bool:
        info = (await cluster.stream_info(stream)).cluster
        assert info is not None
        peers = {peer.name: peer for peer in info.replicas or []}
        return info.leader == node or (node in peers and bool(peers[node].current))

    await eventually(current, what=f"{node} to catch up on {stream}", within=30)


async def test_the_cluster_refuses_anonymous_clients_and_forged_events(
    nats_cluster: NatsCluster,
) -> None:
    """The chart values' authorization, live on the cluster: no anonymous client, and no
    component publishing another's events."""
    await nats_cluster.wait_for_jetstream()
    with pytest.raises(Exception, match=r"(?i)authorization|no servers"):
        await nats.connect(servers=nats_cluster.servers, connect_timeout=2, allow_reconnect=False)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    impostor = await nats.connect(
        servers=nats_cluster.servers,
        name=client_name("routing"),
        inbox_prefix=inbox_prefix(client_name("routing")),
        nkeys_seed=str(seed_file(nats_cluster.seed_dir, "routing")),
        error_cb=on_error,
    )
    try:
        await impostor.publish("cx.feedback.response.received.v1", b"{}")
        await impostor.flush()
        await eventually(
            lambda: asyncio.sleep(0, result=any("permissions violation" in e for e in errors)),
            what="the server to refuse routing's publish to cx.feedback",
        )
    finally:
        await impostor.close()
