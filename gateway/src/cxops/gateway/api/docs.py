"""``/openapi.json`` and ``/docs`` for the whole suite."""

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from cxops.gateway.api.deps import Runtime

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def suite_openapi(request: Request, runtime: Runtime) -> JSONResponse:
    """The gateway's own endpoints and every service that answers, merged."""
    document = await runtime.suite_openapi.document(
        http=runtime.http, gateway=request.app.openapi()
    )
    return JSONResponse(document)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="cxops API",
        swagger_ui_parameters={"persistAuthorization": True},
    )
