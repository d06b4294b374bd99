"""The OpenAPI document as the API's contract (what bank and bureau IT generate their clients from).

Every operation's error responses are declared here, once, from what the route is made of — not by
hand on each route:

* every operation: 400 (a malformed parameter or body) and 413 (a body over the upload limit);
* an operation that needs an API key (the ``principal`` dependency): 401 and 403;
* a path with an identifier in it: 404;
* a body: 415 (another media type);
* a write (every write is audited under its ``request_id``): 409 (a conflict, or the chain refused
  it), 422 (well-formed but refused by the domain rules) and 503 (the chain node);
* the public endpoints (``public_rate_limit``): 429, with ``Retry-After``.

All of them carry one schema, ``Error`` (``{"error": {"code", "message", "details"}}``), which is
what ``registry.api.app`` answers for every error. FastAPI's own 422 ``HTTPValidationError`` is
dropped where the route cannot answer 422 (a request that fails validation gets 400 here), and a
model's nested definitions (``$defs``) in a hand-declared body are moved to ``components`` so that
every ``$ref`` resolves.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from registry.api.deps import principal, public_rate_limit, request_id

__all__ = ["ErrorBody", "also", "document_errors", "install_openapi", "link"]


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. bad_request, unauthenticated, conflict")
    message: str = Field(description="one line for a person")
    details: Any = Field(None, description="structured context (the field, the limit, the rejected lines)")


class ErrorBody(BaseModel):
    """Every error the API answers."""

    error: ErrorDetail


ERRORS: dict[int, str] = {
    400: "Bad request: a malformed parameter or body",
    401: "No API key, or one that is unknown or revoked",
    403: "The caller's role or organisation may not do this",
    404: "No such resource",
    409: "Conflict with the current state (or the chain refused the transaction)",
    413: "The body is larger than the upload limit",
    415: "The body's media type is not one this operation reads",
    422: "Well-formed, but refused by the domain rules",
    429: "Too many requests from this client (see Retry-After)",
    503: "The chain node is unreachable or did not confirm in time",
}


def _calls(dependant: Any) -> set[Any]:
    """Every dependency callable under a route, at any depth."""
    found = set()
    for dep in dependant.dependencies:
        found.add(dep.call)
        found |= _calls(dep)
    return found


def error_codes(route: APIRoute) -> set[int]:
    """The error statuses this route can answer, from its dependencies, path, body and method."""
    codes = {400, 413}
    calls = _calls(route.dependant)
    if principal in calls:
        codes |= {401, 403}
    if public_rate_limit in calls:
        codes.add(429)
    if route.dependant.path_params or "{" in route.path:
        codes.add(404)
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        codes.add(415)
    if request_id in calls:  # a write: audited under its request id, and most go to the chain
        codes |= {409, 422, 503}
    return codes


#: How an operation that depends on ``principal`` takes an organisation's API key (either scheme).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiKeyBearer": {"type": "http", "description": "an organisation's API key", "scheme": "bearer"},
    "apiKeyHeader": {
        "type": "apiKey",
        "description": "an organisation's API key (instead of Authorization: Bearer)",
        "in": "header",
        "name": "X-API-Key",
    },
}
_SECURITY = [{name: []} for name in SECURITY_SCHEMES]

_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def also(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Error responses a route answers beyond what ``error_codes`` derives (a query that names a
    resource: 404), for the route's ``responses=``."""
    return {code: {"description": ERRORS[code], "content": _ERROR_CONTENT} for code in codes}


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link from a response to the operation that uses what it returned."""
    return {"operationId": operation_id, "description": description, "parameters": parameters}


def document_errors(router: APIRouter) -> None:
    """Declare each of a router's routes' error responses, with the one Error schema, and the API
    key's security schemes where the route takes one, on the route (before the router is included in
    the app)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            codes = error_codes(route)
            if 401 in codes:  # it takes an API key (which registry.api.deps reads itself)
                route.openapi_extra = {**(route.openapi_extra or {}), "security": _SECURITY}
            for code in sorted(codes):
                route.responses.setdefault(code, {"description": ERRORS[code], "content": _ERROR_CONTENT})


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move nested ``$defs`` (of a model schema declared by hand) into ``components/schemas``."""
    if isinstance(node, dict):
        for name, schema in node.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
            _hoist_defs(schema, schemas)
        for value in node.values():
            _hoist_defs(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, schemas)


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the finished document (built once): the API key's security
    schemes, the Error schema in ``components``, FastAPI's 422 dropped where the route declared
    none, every ``$ref`` resolvable."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schemas = spec["components"].setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        _hoist_defs(error_schema, schemas)
        schemas["ErrorBody"] = error_schema
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if "HTTPValidationError" in repr(responses.get("422")):  # FastAPI's, never answered
                    responses.pop("422")
                _hoist_defs(operation.get("requestBody"), schemas)
        for unused in ("HTTPValidationError", "ValidationError"):  # in this order: the first uses the second
            if f"#/components/schemas/{unused}" not in repr(spec["paths"]) + repr(schemas):
                schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
