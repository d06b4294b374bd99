"""Request dependencies: the service context, a DB session, the calling principal."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

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


# An organisation's API key, as `Authorization: Bearer KEY` or `X-API-Key: KEY`: declared as security
# schemes (not header parameters), so a generated client sends the key it is given, never an
# arbitrary header value. Missing or wrong keys are refused by `authenticate` (401), not here.
_BEARER = HTTPBearer(auto_error=False, scheme_name="apiKeyBearer", description="an organisation's API key")
_API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKeyHeader",
    description="an organisation's API key (instead of Authorization: Bearer)",
)


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    x_api_key: Annotated[str | None, Security(_API_KEY)],
) -> Principal:
    presented = x_api_key
    if presented is None and bearer is not None:
        presented = bearer.credentials.strip()
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
