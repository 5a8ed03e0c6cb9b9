"""Probes and metrics, reachable without a key."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cxops.common.errors import problem_response
from cxops.common.telemetry import metrics_endpoint
from cxops.gateway.api.deps import Runtime

router = APIRouter(tags=["health"], include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: Runtime) -> JSONResponse:
    """The gateway's database answers. The services are not checked: one service down must not
    take the gateway (and every other service) out of the load balancer."""
    try:
        await asyncio.wait_for(runtime.db.ping(), timeout=2)
    except Exception as exc:  # noqa: BLE001 - reported as not ready, not raised
        return problem_response(
            503, "not ready", slug="not-ready", checks={"database": f"unavailable: {exc}"}
        )
    return JSONResponse({"status": "ready", "checks": {"database": "ok"}})


router.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
