"""One OpenAPI document for the whole suite: the gateway's own endpoints and every service's.

Each service serves its own ``/openapi.json`` (unauthenticated; it describes, it does not
answer). The gateway fetches them over HTTP, keeps each for ``openapi_cache_seconds``, and merges
them: paths are already ``/v1/<service>/...`` as the gateway exposes them; component names get the
service as a prefix (``routing.Agent``) so that two services' ``Agent`` or FastAPI's shared
``HTTPValidationError`` cannot collide, and every ``$ref`` is rewritten to match. A service that
does not answer is left out (listed under ``info.x-cxops-services``) and asked again next time.
"""

import asyncio
import contextlib
import copy
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from cxops.common.errors import PROBLEM_MEDIA_TYPE

log = logging.getLogger("cxops.gateway.openapi")

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The API key as a bearer token: `Authorization: Bearer cxk_...`.",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The API key in its own header: `X-API-Key: cxk_...`.",
    },
}
#: Either header form satisfies the requirement.
SECURITY: list[dict[str, list[str]]] = [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _problem(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"type": "object"}}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


_RETRY_AFTER = "Seconds to wait before retrying."
#: What the gateway itself may answer on any operation, before or instead of the route.
GATEWAY_ANSWERS: dict[str, dict[str, Any]] = {
    "400": _problem(
        "Bad request: a path holding control characters, or a body that cannot be read."
    ),
    "401": _problem(
        "No valid API key.", **{"WWW-Authenticate": "The scheme to authenticate with."}
    ),
    "413": _problem("The request body is larger than the gateway's limit."),
    "429": _problem(
        "Over the key's rate limit, or too many failed authentications from this address.",
        **{"Retry-After": _RETRY_AFTER},
    ),
    "503": _problem(
        "The API key cannot be verified right now, or the service is unavailable.",
        **{"Retry-After": _RETRY_AFTER},
    ),
}
#: What the gateway may answer on a forwarded operation, on top of :data:`GATEWAY_ANSWERS`.
PROXY_ANSWERS: dict[str, dict[str, Any]] = {
    "504": _problem("The service did not answer in time."),
}


def _add_answers(operation: dict[str, Any], answers: Mapping[str, dict[str, Any]]) -> None:
    """Document ``answers`` on ``operation``, keeping what it documents itself."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, answer in answers.items():
        responses.setdefault(status, copy.deepcopy(answer))


def _rewrite_refs(node: Any, service: str) -> Any:
    """A copy of ``node`` whose local component references point at the prefixed names."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                _, _, kind, name = value.split("/", 3)
                out[key] = f"#/components/{kind}/{service}.{name}"
            else:
                out[key] = _rewrite_refs(value, service)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, service) for item in node]
    return node


def merge_openapi(
    gateway: Mapping[str, Any],
    services: Mapping[str, Mapping[str, Any]],
    *,
    unavailable: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """The suite's document: ``gateway`` plus each service's paths under ``/v1/<name>``."""
    doc: dict[str, Any] = copy.deepcopy(dict(gateway))
    paths: dict[str, Any] = doc.setdefault("paths", {})
    components: dict[str, Any] = doc.setdefault("components", {})
    tags: list[dict[str, Any]] = list(doc.get("tags", []))
    operation_ids = {
        op.get("operationId")
        for item in paths.values()
        for method, op in item.items()
        if method in _HTTP_METHODS and isinstance(op, dict)
    }
    for item in paths.values():
        for method, operation in item.items():
            if method in _HTTP_METHODS and isinstance(operation, dict):
                _add_answers(operation, GATEWAY_ANSWERS)

    for name, spec in services.items():
        prefix = f"/v1/{name}"
        for path, item in _rewrite_refs(spec.get("paths", {}), name).items():
            if not (path == prefix or path.startswith(prefix + "/")):
                continue
            for method, operation in item.items():
                if method not in _HTTP_METHODS or not isinstance(operation, dict):
                    continue
                operation["tags"] = [f"{name}/{tag}" for tag in operation.get("tags", [])] or [name]
                _add_answers(operation, {**GATEWAY_ANSWERS, **PROXY_ANSWERS})
                if operation.get("operationId") in operation_ids:
                    operation["operationId"] = f"{name}_{operation['operationId']}"
                operation_ids.add(operation.get("operationId"))
            paths[path] = item
        for kind, entries in spec.get("components", {}).items():
            if kind == "securitySchemes" or not isinstance(entries, dict):
                continue
            target = components.setdefault(kind, {})
            for component, value in entries.items():
                target[f"{name}.{component}"] = _rewrite_refs(value, name)
        for tag in spec.get("tags", []):
            tags.append({**tag, "name": f"{name}/{tag['name']}"})

    components["securitySchemes"] = {
        **components.get("securitySchemes", {}),
        **SECURITY_SCHEMES,
    }
    doc["security"] = SECURITY
    if tags:
        doc["tags"] = tags
    status = {name: "included" for name in services}
    status.update({name: "unavailable" for name in unavailable})
    doc["info"] = {
        **doc.get("info", {}),
        "title": "cxops",
        "description": (
            "The cxops suite through its gateway. Every call needs an API key "
            "(`Authorization: Bearer <key>` or `X-API-Key: <key>`); errors are RFC 9457 "
            "problem+json."
            + (
                f" Not described right now (the service did not answer): {', '.join(unavailable)}."
                if unavailable
                else ""
            )
        ),
        "x-cxops-services": status,
    }
    return doc


def _template_pattern(template: str) -> re.Pattern[str]:
    """``/v1/feedback/responses/{response_id}`` → a pattern matching its paths."""
    parts = re.split(r"(\{[^/{}]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


def route_templates(spec: Mapping[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """A service's paths as (pattern, template), literal paths first: ``/things/latest`` is
    itself, not ``/things/{id}``."""
    templates = sorted(spec.get("paths", {}), key=lambda path: (path.count("{"), path))
    return [(_template_pattern(template), template) for template in templates]


class SuiteOpenAPI:
    """Fetches and caches the services' documents; merges them on demand, and names the route
    of a forwarded request from them (the metrics' ``route`` label)."""

    def __init__(
        self,
        *,
        services: Mapping[str, str],
        cache_seconds: float,
        fetch_timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = dict(services)
        self.cache_seconds = cache_seconds
        self.fetch_timeout_seconds = fetch_timeout_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._routes: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None
        self._next_refresh = 0.0

    async def document(
        self, *, http: httpx.AsyncClient, gateway: Mapping[str, Any]
    ) -> dict[str, Any]:
        await self.refresh(http)
        available = {name: self._cache[name][1] for name in self.services if name in self._cache}
        unavailable = [name for name in self.services if name not in available]
        return merge_openapi(gateway, available, unavailable=unavailable)

    async def refresh(self, http: httpx.AsyncClient) -> None:
        """Fetch the documents that are missing or older than ``cache_seconds``."""
        async with self._lock:
            now = self.clock()
            due = [
                name
                for name in self.services
                if name not in self._cache or now - self._cache[name][0] >= self.cache_seconds
            ]
            fetched = await asyncio.gather(*(self._fetch(http, name) for name in due))
            for name, spec in zip(due, fetched, strict=True):
                if spec is None:
                    self._cache.pop(name, None)
                else:
                    self._cache[name] = (now, spec)
                    self._routes[name] = route_templates(spec)

    def route(self, service: str, path: str, *, http: httpx.AsyncClient) -> str:
        """The route template of a forwarded request, from the service's own document.

        Bounded: the answer is one of the service's documented paths or
        ``/v1/<service>/{path}``, so a client cannot grow the metrics with paths of its own.
        A document that is missing or stale is fetched in the background (at most once per
        ``cache_seconds``, or a second); until then the fallback is the label.
        """
        now = self.clock()
        cached = self._cache.get(service)
        stale = cached is None or now - cached[0] >= self.cache_seconds
        idle = self._refreshing is None or self._refreshing.done()
        if stale and idle and now >= self._next_refresh:
            self._next_refresh = now + max(self.cache_seconds, 1.0)
            self._refreshing = asyncio.create_task(
                self.refresh(http), name="cxops-gateway-openapi-refresh"
            )
        for pattern, template in self._routes.get(service, ()):
            if pattern.fullmatch(path):
                return template
        return f"/v1/{service}/{{path}}"

    async def close(self) -> None:
        """Stop a background refresh (the gateway is stopping)."""
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def _fetch(self, http: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
        url = f"{self.services[name]}/openapi.json"
        try:
            response = await http.get(url, timeout=self.fetch_timeout_seconds)
            response.raise_for_status()
            spec = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.info("no OpenAPI from %s (%s): left out, asked again next time", name, exc)
            return None
        if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
            log.warning("%s served something that is not an OpenAPI document", name)
            return None
        return spec
