from typing import Annotated

import httpx
from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem, field_path, install_problem_handlers


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    score: int = Field(ge=0, le=10)
    tags: list[str] = []


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/items")
    async def search(limit: Annotated[int, Query(ge=1)] = 10) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "already there", slug="conflict", existing_id="abc")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def test_field_path() -> None:
    assert field_path(("body", "items", 0, "score")) == "items.0.score"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"


async def test_validation_names_each_field() -> None:
    async with _client() as client:
        response = await client.post("/items", json={"name": "a", "score": 11, "colour": "red"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == 422 and body["type"].endswith("/validation-error")
    fields = {error["field"]: error for error in body["errors"]}
    assert set(fields) == {"score", "colour"}
    assert fields["colour"]["code"] == "extra_forbidden"
    assert "score" in body["detail"]


async def test_malformed_json_and_query_errors() -> None:
    async with _client() as client:
        malformed = await client.post(
            "/items", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        query = await client.get("/items", params={"limit": 0})
    assert malformed.status_code == 422
    [error] = malformed.json()["errors"]
    assert error["code"] == "json_invalid"
    assert error["field"] == "body"
    assert "at character" in error["message"]
    assert query.json()["errors"] == [
        {
            "field": "limit",
            "in": "query",
            "message": query.json()["errors"][0]["message"],
            "code": "greater_than_equal",
        }
    ]


async def test_problem_404_and_500() -> None:
    async with _client() as client:
        conflict = await client.get("/conflict")
        missing = await client.get("/nowhere")
        boom = await client.get("/boom")
    assert conflict.status_code == 409
    assert conflict.json()["existing_id"] == "abc"
    assert conflict.json()["instance"] == "/conflict"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert boom.status_code == 500
    assert "secret internals" not in boom.text
