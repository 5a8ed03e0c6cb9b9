"""The journey skeleton: settings from its own prefix, migrations on both databases, health,
readiness, metrics and the operator's dead-letter view behind a token, and a refusal to start
on an unmigrated database."""

from cxops.common.auth import Role
from tests.support.services import (
    RunningService,
    auth,
    eventually,
)


async def test_journey_serves_health_readiness_and_metrics(journey: RunningService) -> None:
    healthz = await journey.client.get("/healthz")

    async def ready() -> bool:
        return (await journey.client.get("/readyz")).status_code == 200

    await eventually(ready, what="journey to be ready")
    readyz = (await journey.client.get("/readyz")).json()
    metrics = await journey.client.get("/metrics")

    assert healthz.json() == {"status": "ok"}
    assert readyz == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
    assert "cxops_http_requests_total" in metrics.text


async def test_journey_provisions_its_stream(journey: RunningService) -> None:
    async def stream_subjects() -> list[str]:
        info = await journey.state.broker.js.stream_info("CX_JOURNEY")
        subjects: list[str] = info.config.subjects
        return subjects

    assert await eventually(stream_subjects, what="the CX_JOURNEY stream") == ["cx.journey.>"]


async def test_the_operators_view_needs_a_token_and_a_role(journey: RunningService) -> None:
    path = "/v1/journey/ops/dead-letters"
    # Ready: connected, and the dead-letter stream the view reads exists.
    await eventually(lambda: _streams_provisioned(journey), what="journey's streams")

    anonymous = await journey.client.get(path)
    agent = await journey.client.get(path, headers=auth("acme", Role.AGENT))
    ops_lead = await journey.client.get(path, headers=auth("acme", Role.OPS_LEAD))

    assert anonymous.status_code == 401
    assert agent.status_code == 403
    assert ops_lead.status_code == 200
    assert ops_lead.json() == {"items": [], "count": 0}


async def _streams_provisioned(journey: RunningService) -> bool:
    return journey.state.broker.is_connected and journey.state.streams_provisioned
