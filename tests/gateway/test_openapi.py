"""One OpenAPI for the suite: the gateway's own endpoints and the services', merged."""

from typing import Any

import httpx

from cxops.cli.processes import free_port
from cxops.common.components import SERVICES
from cxops.gateway.openapi import SuiteOpenAPI, merge_openapi
from tests.gateway import echo_upstream
from tests.gateway.conftest import Gateway, serving
from tests.support.services import eventually


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(item) for item in node))
    return set()


def resolves(doc: dict[str, Any], ref: str) -> bool:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def service_spec(schema: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "svc", "version": "1"},
        "paths": {
            "/v1/alpha/things": {
                "post": {
                    "operationId": "create",
                    "tags": ["things"],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{schema}"}
                            }
                        }
                    },
                    "responses": {"201": {"description": "made"}},
                }
            },
            "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {
            "schemas": {
                schema: {"properties": {"sub": {"$ref": "#/components/schemas/Shared"}}},
                "Shared": {"type": "string"},
            },
            "securitySchemes": {"internal": {"type": "apiKey", "in": "header", "name": "X"}},
        },
        "tags": [{"name": "things"}],
    }


def test_merge_namespaces_components_and_keeps_only_service_paths() -> None:
    gateway = {
        "openapi": "3.1.0",
        "info": {"title": "gw", "version": "0.1.0"},
        "paths": {"/v1/keys": {"get": {"operationId": "create", "responses": {}}}},
        "components": {"schemas": {"Shared": {"type": "integer"}}},
    }
    doc = merge_openapi(gateway, {"alpha": service_spec("Thing")}, unavailable=["beta"])

    assert set(doc["paths"]) == {"/v1/keys", "/v1/alpha/things"}
    operation = doc["paths"]["/v1/alpha/things"]["post"]
    assert operation["tags"] == ["alpha/things"]
    assert operation["operationId"] == "alpha_create"  # collided with the gateway's
    schemas = doc["components"]["schemas"]
    assert schemas["Shared"] == {"type": "integer"}  # the gateway's own is untouched
    assert schemas["alpha.Shared"] == {"type": "string"}
    assert all(resolves(doc, ref) for ref in refs(doc))
    assert "#/components/schemas/alpha.Thing" in refs(doc)
    assert set(doc["components"]["securitySchemes"]) == {"ApiKeyBearer", "ApiKeyHeader"}
    assert doc["security"] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
    assert doc["info"]["x-cxops-services"] == {"alpha": "included", "beta": "unavailable"}
    assert {"name": "alpha/things"} in doc["tags"]


async def test_the_suite_document_is_public_and_holds_every_answering_service(
    gateway: Gateway,
) -> None:
    response = await gateway.client.get("/openapi.json")  # no key needed to read the docs
    assert response.status_code == 200
    doc = response.json()
    for path in (
        "/v1/keys",
        "/v1/keys/{key_id}",
        "/v1/audit",
        "/v1/routing/ops/dead-letters",
        "/v1/journey/echo",
        "/v1/feedback/echo",
    ):
        assert path in doc["paths"], path
    assert "/internal/only" not in doc["paths"]
    assert not any(path.startswith("/v1/scorecard") for path in doc["paths"])
    assert doc["info"]["x-cxops-services"] == {
        "feedback": "included",
        "routing": "included",
        "scorecard": "unavailable",
        "journey": "included",
    }
    assert "journey.Echo" in doc["components"]["schemas"]
    assert all(resolves(doc, ref) for ref in refs(doc))
    bearer = doc["components"]["securitySchemes"]["ApiKeyHeader"]
    assert (bearer["in"], bearer["name"]) == ("header", "X-API-Key")

    # What the gateway itself may answer is documented on every operation it serves or forwards.
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            documented = set(operation["responses"])
            assert {"400", "401", "413", "429", "503"} <= documented, (method, path)
            forwarded = path.split("/")[2] in SERVICES
            assert ("504" in documented) == forwarded, (method, path)
    feedback_echo = doc["paths"]["/v1/feedback/echo"]
    assert any("429" in op["responses"] for op in feedback_echo.values())

    docs = await gateway.client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text and "swagger" in docs.text.lower()


async def test_a_service_that_was_down_is_included_once_it_answers() -> None:
    port = free_port()
    suite = SuiteOpenAPI(
        services={"journey": f"http://127.0.0.1:{port}"},
        cache_seconds=60,
        fetch_timeout_seconds=1,
    )
    gateway = {"openapi": "3.1.0", "info": {"title": "gw", "version": "1"}, "paths": {}}
    async with httpx.AsyncClient(trust_env=False) as http:
        down = await suite.document(http=http, gateway=gateway)
        assert down["info"]["x-cxops-services"] == {"journey": "unavailable"}

        async with serving(echo_upstream.app, port):
            up = await suite.document(http=http, gateway=gateway)
        assert "/v1/journey/echo" in up["paths"]
        # Cached: the service being gone again does not remove it before the TTL.
        cached = await suite.document(http=http, gateway=gateway)
        assert "/v1/journey/echo" in cached["paths"]


def test_merge_documents_the_gateways_own_answers_without_hiding_the_services() -> None:
    spec = service_spec("Thing")
    spec["paths"]["/v1/alpha/things"]["post"]["responses"]["429"] = {"description": "mine"}
    gateway = {"openapi": "3.1.0", "info": {"title": "gw", "version": "1"}, "paths": {}}
    doc = merge_openapi(gateway, {"alpha": spec})
    responses = doc["paths"]["/v1/alpha/things"]["post"]["responses"]
    assert set(responses) == {"201", "400", "401", "413", "429", "503", "504"}
    assert responses["429"] == {"description": "mine"}  # the service's own word is kept
    assert "Retry-After" in responses["503"]["headers"]


async def test_forwarded_requests_are_labelled_with_the_services_route(gateway: Gateway) -> None:
    """Issue 12, defect 6: the ``route`` label of a forwarded request was ``unmatched``. It is
    the route in the service's own document, or ``/v1/<service>/{path}``: never a raw path."""
    admin = await gateway.key()

    async def labelled() -> bool:
        await gateway.client.get("/v1/routing/ops/dead-letters", headers=admin)
        return 'route="/v1/routing/ops/dead-letters"' in (await gateway.client.get("/metrics")).text

    # The service's document is fetched in the background.
    await eventually(labelled, what="the service's route label")
    for path in ("/v1/journey/echo", "/v1/journey/no/such/thing", "/v1/journey/echo/42"):
        await gateway.client.get(path, headers=admin)
    metrics = (await gateway.client.get("/metrics")).text
    assert 'method="GET",route="/v1/journey/echo",status="200"' in metrics
    assert 'route="/v1/journey/{path}"' in metrics
    assert "/no/such/thing" not in metrics and "/echo/42" not in metrics
