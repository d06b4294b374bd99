import asyncio
import base64
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from registry.api.deps import AnyPrincipal
from registry.core.errors import BadRequest

router = APIRouter(prefix="/v1", tags=["verify"])

BUNDLE_TTL = 5.0


class VerifyRequest(BaseModel):
    credential: dict[str, Any] | str = Field(description="the holder copy (object or JSON text)")
    at: str | None = Field(None, description="RFC 3339 time for validity and usage (default: now)")
    relyingParty: str | None = None
    purpose: str | None = None
    data: str | None = Field(None, description="the dataset, base64, for the data check")


async def current_verifier(ctx):
    """A Verifier over the registry's own signed trust bundle, refreshed every few seconds."""
    from registry.services.bundle import export_bundle
    from verifier import TrustBundle, Verifier

    cache = getattr(ctx, "_verifier_cache", None)
    if cache and time.monotonic() - cache[0] < BUNDLE_TTL:
        return cache[1]
    lock = ctx.__dict__.setdefault("_verifier_lock", asyncio.Lock())
    async with lock:
        cache = getattr(ctx, "_verifier_cache", None)
        if cache and time.monotonic() - cache[0] < BUNDLE_TTL:
            return cache[1]
        bundle = await export_bundle(ctx)
        v = Verifier(trust=TrustBundle.load(bundle, operators=[ctx.operator_address]))
        ctx._verifier_cache = (time.monotonic(), v)
        return v


def _invalid_unicode(value) -> bool:
    """True if a string in `value` holds a lone surrogate (JSON allows "\\ud800"; UTF-8 does not)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_invalid_unicode(k) or _invalid_unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_invalid_unicode(v) for v in value)
    return False


def _holds_lone_surrogate(body: VerifyRequest) -> bool:
    """:func:`_invalid_unicode` of the request, after a C-speed pass: orjson writes any JSON value
    that is valid Unicode throughout (its refusals have other causes too, so the walk decides)."""
    values = (body.credential, body.at, body.relyingParty, body.purpose, body.data)
    try:
        orjson.dumps(values)
        return False
    except orjson.JSONEncodeError:
        return any(_invalid_unicode(v) for v in values)


@router.post("/verify")
async def verify(body: VerifyRequest, request: Request, p: AnyPrincipal):
    """Run every check of the offline verifier against the registry's current trust bundle."""
    from verifier._schema import parse_datetime

    if _holds_lone_surrogate(body):
        raise BadRequest("the request holds text that is not valid Unicode (a lone surrogate)")
    at = None
    if body.at is not None:
        try:
            at = parse_datetime(body.at)
        except ValueError as exc:
            raise BadRequest(f"at: {exc}") from None
    data = None
    if body.data is not None:
        try:
            data = base64.b64decode(body.data, validate=True)
        except ValueError:
            raise BadRequest("data must be base64") from None
    v = await current_verifier(request.app.state.ctx)
    result = v.verify(body.credential, at=at, data=data, relying_party=body.relyingParty, purpose=body.purpose)
    # plain JSON of str/bool/None values: orjson writes it without FastAPI's generic encoder pass
    return Response(orjson.dumps(result.to_json()), media_type="application/json")
