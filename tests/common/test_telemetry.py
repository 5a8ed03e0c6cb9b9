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


def _resource_app() -> FastAPI:
    app = FastAPI(redirect_slashes=False)
    install_problem_handlers(app)

    @app.get("/v1/things")
    async def list_things() -> dict[str, list[str]]:
        return {"items": ["a", "b"]}

    @app.post("/v1/things", status_code=201)
    async def create_thing() -> dict[str, str]:
        return {"id": "c"}

    @app.delete("/v1/things/{name}")
    async def delete_thing(name: str) -> dict[str, str]:
        return {"deleted": name}

    app.add_middleware(RequestContextMiddleware)
    return app


async def test_options_and_405_list_every_method_of_the_path() -> None:
    """A router answers 405 from the first route whose path matched; ``Allow`` must still name
    the methods of every route at that path (issue 12, defect 6)."""
    transport = httpx.ASGITransport(app=_resource_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        options = await client.options("/v1/things")
        refused = await client.put("/v1/things")
        item_options = await client.options("/v1/things/a")
        item_refused = await client.get("/v1/things/a")
    assert options.status_code == 204 and options.content == b""
    assert options.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert refused.status_code == 405
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert refused.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert item_options.headers["allow"] == item_refused.headers["allow"] == "DELETE, OPTIONS"


async def test_head_is_answered_wherever_get_is() -> None:
    transport = httpx.ASGITransport(app=_resource_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        got = await client.get("/v1/things")
        head = await client.head("/v1/things")
        head_delete_only = await client.head("/v1/things/a")
        head_unknown = await client.head("/v1/nothing")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"] != "0"
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head_delete_only.status_code == 405 and head_delete_only.content == b""
    assert head_unknown.status_code == 404
