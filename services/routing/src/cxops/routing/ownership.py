"""Which routing replica owns which tenant, and the hop to the owner.

Each tenant's engine lives in exactly one replica: the holder of the tenant's lease in the
``cxops_routing_owners`` bucket (:mod:`cxops.common.events.lease`). A replica takes a free
tenant when a call for it arrives, or when its scan finds a tenant with work and no owner (the
owner died: its lease lapsed), and then rebuilds the engine from the database. A replica that is
not the owner forwards the call over HTTP to the owner's address, which is part of the
holder's id (``<instance_url>#<process id>``); a forwarded call is marked and never forwarded
again (an owner that just lost the tenant answers 503 with ``Retry-After``, and the caller's
retry finds the new owner).
"""

from __future__ import annotations

import base64
import logging

import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from cxops.common.errors import problem_response

log = logging.getLogger("cxops.routing.ownership")

#: Marks a call forwarded by another replica: it is answered here or refused, never passed on.
FORWARDED_HEADER = "x-cxops-routing-forwarded"
_HOP_BY_HOP = {
    b"host",
    b"content-length",
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"te",
    b"upgrade",
    b"proxy-connection",
}


def tenant_key(tenant: str) -> str:
    """The tenant's key in the bucket (KV keys allow few characters; tenants may use more)."""
    return "t." + base64.urlsafe_b64encode(tenant.encode()).decode().rstrip("=")


def holder_id(instance_url: str | None, process_id: str) -> str:
    return f"{instance_url}#{process_id}" if instance_url else f"#{process_id}"


def holder_url(holder: str) -> str | None:
    url, _, _ = holder.rpartition("#")
    return url or None


class NotOwner(Exception):
    """Another replica owns the tenant (``url`` is where, if it said), or ownership is moving."""

    def __init__(self, tenant: str, url: str | None, *, reason: str = "") -> None:
        super().__init__(f"tenant {tenant} is owned elsewhere ({url or reason or 'unknown'})")
        self.tenant = tenant
        self.url = url
        self.reason = reason


def _moving(detail: str) -> Response:
    response: Response = problem_response(
        503, detail, slug="owner-moving", headers={"Retry-After": "1"}
    )
    return response


async def forward_to_owner(request: Request, exc: Exception) -> Response:
    """The app's handler for :class:`NotOwner`: the same call, to the owner, answered as it
    answers (streamed, so a live offer stream passes through)."""
    assert isinstance(exc, NotOwner)
    if exc.url is None or request.headers.get(FORWARDED_HEADER):
        return _moving(f"The tenant's routing is moving between replicas; retry. {exc.reason}")
    from cxops.routing.switchboard import Switchboard

    client: httpx.AsyncClient = request.app.state.cxops.component(Switchboard).http
    headers = [
        (name, value) for name, value in request.headers.raw if name.lower() not in _HOP_BY_HOP
    ]
    headers.append((FORWARDED_HEADER.encode(), b"1"))
    target = exc.url.rstrip("/") + request.url.path
    if request.url.query:
        target += "?" + request.url.query
    try:
        upstream = await client.send(
            client.build_request(
                request.method, target, headers=headers, content=await request.body()
            ),
            stream=True,
        )
    except httpx.HTTPError as error:
        log.warning("cannot reach the owner of %s at %s: %s", exc.tenant, exc.url, error)
        return _moving(f"The tenant's owner at {exc.url} cannot be reached; retry.")
    passed = {
        name: value
        for name, value in upstream.headers.items()
        if name.lower().encode() not in _HOP_BY_HOP
    }
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=passed,
        background=BackgroundTask(upstream.aclose),
    )
