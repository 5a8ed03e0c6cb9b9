"""Dependencies shared by the gateway's endpoints."""

from typing import Annotated

from fastapi import Depends, Request

from cxops.gateway.runtime import GatewayRuntime


def get_runtime(request: Request) -> GatewayRuntime:
    runtime: GatewayRuntime = request.app.state.cxops
    return runtime


Runtime = Annotated[GatewayRuntime, Depends(get_runtime)]
