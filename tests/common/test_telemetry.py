"""The outermost middleware: request ids, metrics, and paths no route can hold."""

import httpx
import pytest
from fastapi import FastAPI

from cxops.common.errors import PROBLEM_MEDIA_TYPE, install_problem_handlers
from cxops.common.telemetry import HTTP_REQUESTS, RequestContextMiddleware


def _app(reached: list[str]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/v1/things/{name}")
    async def thing(name: str) -> dict[str, str]:
        reached.append(name)
        return {"name": name}

    app.add_middleware(RequestContextMiddleware)
    return app


@pytest.mark.parametrize("encoded", ["%00", "%0A", "%1b", "%7F", "%C2%85", "%0D%0A"])
async def test_a_path_with_control_characters_is_refused_before_anything(encoded: str) -> None:
    reached: list[str] = []
    transport = httpx.ASGITransport(app=_app(reached))
    refused_before = HTTP_REQUESTS.labels("POST", "unmatched", "400")._value.get()
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(f"/v1/things/x{encoded}y", headers={"X-Request-Id": "r-1"})
        fine = await client.post("/v1/things/x%20y")
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["x-request-id"] == "r-1"
    assert response.json()["type"].endswith("/control-characters-in-path")
    assert HTTP_REQUESTS.labels("POST", "unmatched", "400")._value.get() == refused_before + 1
    assert fine.status_code == 200 and reached == ["x y"]
