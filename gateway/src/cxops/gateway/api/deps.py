"""Dependencies shared by the gateway's endpoints."""

from typing import Annotated

from cxops.common.db import unit_of_work
from cxops.gateway.runtime import GatewayRuntime
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

#: One transaction per request, committed when the endpoint returns and *before* the response is
#: sent (``scope="function"``): a caller that got 201 can use what it created at once.
GatewaySession = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


def get_runtime(request: Request) -> GatewayRuntime:
    runtime: GatewayRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[GatewayRuntime, Depends(get_runtime)]
