"""RFC 9457 problem details for every error a cxops process returns.

Validation errors name each offending field (``errors[].field``, a dotted path inside the body,
query or header), so a caller can fix its request without reading our code.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://cxops.dev/problems/"

log = logging.getLogger("cxops.errors")


class Problem(Exception):
    """An error meant for the caller. Raise it anywhere below an endpoint."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _slug(status)
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extensions = extensions


#: Problem types are part of the API: fixed here, not derived from Python's phrase for a status
#: (413 is "Request Entity Too Large" on 3.11 and "Content Too Large" on 3.13).
PROBLEM_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}


def _slug(status: int) -> str:
    return PROBLEM_SLUGS.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "-")


def problem_body(
    status: int, detail: str, *, slug: str | None = None, title: str | None = None, **ext: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or _slug(status)),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(ext)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    slug: str | None = None,
    title: str | None = None,
    **ext: Any,
) -> JSONResponse:
    body = problem_body(status, detail, slug=slug, title=title, **ext)
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("body", "items", 0, "score")`` → ``items.0.score``; the location kind goes elsewhere."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            # The location of unparseable JSON is a character position, not a field.
            position = loc[1] if len(loc) > 1 else "?"
            loc = ("body",)
            err = {**err, "msg": f"{err.get('msg', 'invalid JSON')} at character {position}"}
        out.append(
            {
                "field": field_path(loc),
                "in": loc[0] if loc and loc[0] in ("body", "query", "path", "header") else "body",
                "message": err.get("msg", "invalid"),
                "code": err.get("type", "invalid"),
            }
        )
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        slug=exc.slug,
        title=exc.title,
        **exc.extensions,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(list(exc.errors()))
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422,
        f"The request is not valid: {fields}",
        instance=request.url.path,
        slug="validation-error",
        title="Validation failed",
        errors=errors,
    )


#: The methods a route may declare; HEAD and OPTIONS are answered for every path (below).
_DECLARABLE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method the app answers at the request's path, across all its routes.

    A router answers 405 from the first route whose path matched, whose ``Allow`` names only
    that route's methods (``POST`` for ``/v1/keys``, which also has a ``GET``); asking every
    route with every method gives the whole set. ``HEAD`` comes with ``GET`` (the request
    middleware answers it), ``OPTIONS`` always (answered here).
    """
    found = {"OPTIONS"}
    for method in _DECLARABLE_METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            found.add(method)
    if "GET" in found:
        found.add("HEAD")
    return sorted(found)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
        if request.method == "OPTIONS":  # RFC 9110 §9.3.7: what may be done here
            return Response(status_code=204, headers=headers)
    return problem_response(
        exc.status_code, str(exc.detail), instance=request.url.path, headers=headers
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "An unexpected error occurred; it has been logged.", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


#: For ``responses=`` in route declarations, so the OpenAPI shows problem+json errors: 400 for a
#: path with control characters or a body that cannot be read, 401 and 403, 422 for invalid input.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_MEDIA_TYPE: {}}}
    for status in (400, 401, 403, 422)
}
