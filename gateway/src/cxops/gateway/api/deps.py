"""Dependencies shared by the gateway's endpoints."""

from typing import Annotated

from fastapi import Depends, Request

from cxops.gateway.state import GatewayState


async def get_runtime(request: Request) -> GatewayState:
    runtime: GatewayState = request.app.state.cxops
    return runtime


Runtime = Annotated[GatewayState, Depends(get_runtime)]
