"""``/v1/webhooks``: a tenant's webhook endpoints and their deliveries (roles admin and
integration). Every mutation is audited by the gateway's audit middleware like any other."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from cxops.common.auth import CallerContext, Role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_RESPONSES, Problem
from cxops.gateway.api.deps import Runtime
from cxops.gateway.auth import require_gateway_role
from cxops.gateway.webhooks import service
from cxops.gateway.webhooks.repository import WebhookRepository
from cxops.gateway.webhooks.retries import DeliveryStatus
from cxops.gateway.webhooks.schemas import (
    CreatedEndpoint,
    Delivery,
    DeliveryPage,
    Endpoint,
    EndpointCreate,
    EndpointList,
    EndpointUpdate,
    RotatedSecret,
)

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    responses={**PROBLEM_RESPONSES, 404: PROBLEM_RESPONSES[403] | {"description": "Not Found"}},
)

WebhookManager = Annotated[CallerContext, Depends(require_gateway_role(Role.INTEGRATION))]


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid(exc: service.InvalidField) -> Problem:
    return Problem(
        422,
        f"The request is not valid: {exc.field}",
        slug="validation-error",
        title="Validation failed",
        errors=[{"field": exc.field, "in": "body", "message": exc.message, "code": "refused"}],
    )


@router.post("/endpoints", status_code=201, summary="Create a webhook endpoint")
async def create_endpoint(
    body: EndpointCreate,
    caller: WebhookManager,
    session: SessionDep,
    state: Runtime,
    response: Response,
) -> CreatedEndpoint:
    """The signing secret is in this response only; it is stored sealed."""
    try:
        row, secret = await service.create_endpoint(
            session,
            tenant=caller.tenant,
            body=body,
            sealer=state.sealer,
            checked=state.settings.webhook_urls_checked,
            resolver=state.webhooks.resolver,
            now=_now(),
        )
    except service.InvalidField as exc:
        raise _invalid(exc) from exc
    response.headers["Cache-Control"] = "no-store"
    return CreatedEndpoint(**Endpoint.model_validate(row).model_dump(), secret=secret)


@router.get("/endpoints", summary="List the tenant's webhook endpoints")
async def list_endpoints(caller: WebhookManager, session: SessionDep) -> EndpointList:
    rows = await WebhookRepository(session, tenant=caller.tenant).endpoints()
    return EndpointList(items=[Endpoint.model_validate(row) for row in rows])


async def _endpoint(session: SessionDep, caller: CallerContext, endpoint_id: uuid.UUID) -> Endpoint:
    try:
        row = await service.get_endpoint(session, tenant=caller.tenant, endpoint_id=endpoint_id)
    except service.EndpointNotFound as exc:
        raise Problem(404, str(exc)) from exc
    return Endpoint.model_validate(row)


@router.get("/endpoints/{endpoint_id}", summary="A webhook endpoint")
async def get_endpoint(
    endpoint_id: uuid.UUID, caller: WebhookManager, session: SessionDep
) -> Endpoint:
    return await _endpoint(session, caller, endpoint_id)


@router.patch("/endpoints/{endpoint_id}", summary="Change a webhook endpoint")
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    caller: WebhookManager,
    session: SessionDep,
    state: Runtime,
) -> Endpoint:
    """``enabled: true`` also re-enables an endpoint the gateway disabled after a 410."""
    try:
        row = await service.update_endpoint(
            session,
            tenant=caller.tenant,
            endpoint_id=endpoint_id,
            body=body,
            checked=state.settings.webhook_urls_checked,
            resolver=state.webhooks.resolver,
            now=_now(),
        )
    except service.EndpointNotFound as exc:
        raise Problem(404, str(exc)) from exc
    except service.InvalidField as exc:
        raise _invalid(exc) from exc
    if row.enabled:
        state.webhooks.wake()  # deliveries held while it was disabled are due
    return Endpoint.model_validate(row)


@router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint")
async def delete_endpoint(
    endpoint_id: uuid.UUID, caller: WebhookManager, session: SessionDep
) -> Response:
    """With its deliveries."""
    try:
        await service.delete_endpoint(session, tenant=caller.tenant, endpoint_id=endpoint_id)
    except service.EndpointNotFound as exc:
        raise Problem(404, str(exc)) from exc
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", summary="Rotate an endpoint's secret")
async def rotate_secret(
    endpoint_id: uuid.UUID,
    caller: WebhookManager,
    session: SessionDep,
    state: Runtime,
    response: Response,
) -> RotatedSecret:
    """A new secret, shown once. Until ``previous_secret_expires_at`` every delivery carries a
    signature with each secret, so the receiver can switch whenever it likes in between."""
    overlap = timedelta(seconds=state.settings.webhook_secret_overlap_seconds)
    try:
        row, secret = await service.rotate_secret(
            session,
            tenant=caller.tenant,
            endpoint_id=endpoint_id,
            sealer=state.sealer,
            overlap=overlap,
            now=_now(),
        )
    except service.EndpointNotFound as exc:
        raise Problem(404, str(exc)) from exc
    assert row.previous_secret_expires_at is not None
    response.headers["Cache-Control"] = "no-store"
    return RotatedSecret(
        endpoint=Endpoint.model_validate(row),
        secret=secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        overlap_seconds=overlap.total_seconds(),
    )


@router.post("/endpoints/{endpoint_id}/test", summary="Send a test delivery")
async def send_test(endpoint_id: uuid.UUID, caller: WebhookManager, state: Runtime) -> Delivery:
    """A ``cx.gateway.webhook.test.v1`` delivery, signed like any other, attempted before this
    answers (up to ``webhook_timeout_seconds``); the answer says how it went. If it failed, it
    is retried on the schedule like any delivery (while the endpoint is enabled)."""
    try:
        async with state.db.transaction() as session:
            row = await service.create_test_delivery(
                session, tenant=caller.tenant, endpoint_id=endpoint_id, now=_now()
            )
    except service.EndpointNotFound as exc:
        raise Problem(404, str(exc)) from exc
    await state.webhooks.deliver_now(row.id)
    async with state.db.sessionmaker() as session:
        sent = await WebhookRepository(session, tenant=caller.tenant).delivery(row.id)
    return Delivery.model_validate(sent or row)


@router.get("/endpoints/{endpoint_id}/deliveries", summary="An endpoint's deliveries")
async def list_deliveries(
    endpoint_id: uuid.UUID,
    caller: WebhookManager,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[uuid.UUID | None, Query(description="`next_cursor` of the page before")] = (
        None
    ),
) -> DeliveryPage:
    """Newest first; ``status=failed`` for the ones that gave up."""
    await _endpoint(session, caller, endpoint_id)
    rows, next_cursor = await WebhookRepository(session, tenant=caller.tenant).deliveries(
        endpoint_id=endpoint_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return DeliveryPage(
        items=[Delivery.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=202,
    summary="Send a delivery again",
    responses={409: PROBLEM_RESPONSES[403] | {"description": "Conflict"}},
)
async def retry_delivery(
    delivery_id: uuid.UUID, caller: WebhookManager, state: Runtime
) -> Delivery:
    """A failed (or succeeded) delivery is due again at once, on a fresh schedule, with the same
    ``webhook-id`` and body; 409 if it is still pending."""
    try:
        async with state.db.transaction() as session:
            row = await service.retry_delivery(
                session, tenant=caller.tenant, delivery_id=delivery_id, now=_now()
            )
    except service.DeliveryNotFound as exc:
        raise Problem(404, str(exc)) from exc
    except service.DeliveryInProgress as exc:
        raise Problem(409, str(exc)) from exc
    state.webhooks.wake()
    return Delivery.model_validate(row)
