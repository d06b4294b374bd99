"""Request dependencies: the service context, a DB session, the calling principal."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from registry.core.errors import Forbidden
from registry.services.context import ServiceContext
from registry.services.issuance import Issuance
from registry.services.orgs import Principal, authenticate
from registry.services.runtime import Background

# The dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency
# in its thread pool, which cost the verify API a third of its rate (2,000 → 1,300 req/s).


async def get_ctx(request: Request) -> ServiceContext:
    """The service's context (made once by the API's lifespan, frozen)."""
    return request.app.state.ctx


async def get_issuance(request: Request) -> Issuance:
    """The service's issuance (its worker pool lives as long as the service)."""
    return request.app.state.issuance


async def get_background(request: Request) -> Background:
    """The service's background work: the pipeline, the indexer."""
    return request.app.state.background


async def request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid
    return rid


# An organisation's API key, as `Authorization: Bearer KEY` or `X-API-Key: KEY`. The document declares
# them as security schemes (not header parameters: registry.api.openapi.SECURITY_SCHEMES, on every
# operation that depends on `principal`), so a generated client sends the key it is given, never an
# arbitrary header value. They are read here rather than by FastAPI's `Security(HTTPBearer())` and
# `Security(APIKeyHeader())`: each dependency FastAPI solves costs ~15 µs a request, a twelfth of the
# verify API's rate for the two. Missing or wrong keys are refused by `authenticate` (401).


def presented_key(request: Request) -> str | None:
    """The API key a request presents: ``X-API-Key``, else the credentials of ``Authorization: Bearer``
    (read as FastAPI's APIKeyHeader and HTTPBearer read them); None if neither."""
    headers = request.headers
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    credentials = credentials.strip()
    if credentials and scheme.lower() == "bearer":
        return credentials
    return None


async def principal(request: Request) -> Principal:
    presented = presented_key(request)
    ctx: ServiceContext = request.app.state.ctx
    cache = ctx.auth_cache
    hit = cache.get(presented)
    if hit is not None:
        return hit
    async with ctx.sessions() as s:
        p = await authenticate(s, presented)
    cache.put(presented, p)
    return p


def require(*roles: str):
    """A dependency: the caller must hold one of `roles`."""

    async def dep(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if not p.has(*roles):
            raise Forbidden(
                f"this needs the role {' or '.join(roles)}; {p.org_name} has {', '.join(p.roles)}"
            )
        return p

    return dep


async def public_rate_limit(request: Request) -> None:
    """The public endpoints' per-client limit (429 with Retry-After over it)."""
    request.app.state.public_limit(request)


CtxDep = Annotated[ServiceContext, Depends(get_ctx)]
IssuanceDep = Annotated[Issuance, Depends(get_issuance)]
BackgroundDep = Annotated[Background, Depends(get_background)]
RequestId = Annotated[str, Depends(request_id)]
AnyPrincipal = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(require("admin"))]
IssuerOrAdmin = Annotated[Principal, Depends(require("issuer", "admin"))]
Issuer = Annotated[Principal, Depends(require("issuer"))]
