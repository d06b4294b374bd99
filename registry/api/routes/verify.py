import base64
import json
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from registry.api.deps import AnyPrincipal
from registry.core.errors import BadRequest, UnsupportedMediaType
from registry.services.bundle import current_verifier
from registry.services.prepare import NESTED_TOO_DEEPLY
from verifier.issuance import loads_like

router = APIRouter(prefix="/v1", tags=["verify"])


class VerifyRequest(BaseModel):
    credential: dict[str, Any] | str = Field(description="the holder copy (object or JSON text)")
    at: str | None = Field(None, description="RFC 3339 time for validity and usage (default: now)")
    relyingParty: str | None = None
    purpose: str | None = None
    data: str | None = Field(None, description="the dataset, base64, for the data check")


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


_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": VerifyRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            }
        },
    }
}


def _json_body(raw: bytes) -> Any:
    """The body by Python's json (the reference :func:`_parse` reads by): a body that is not JSON, or
    holds an escaped lone surrogate, is a 400 that says so."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the request is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"the request is not valid JSON: {NESTED_TOO_DEEPLY}") from None
    if _invalid_unicode(value):
        raise BadRequest("the request holds text that is not valid Unicode (a lone surrogate)")
    return value


def _parse(raw: bytes, content_type: str | None) -> VerifyRequest:
    """The request body, parsed here rather than by FastAPI's body machinery (this route is the one
    relying parties call in volume): by :func:`_json_body`, read by orjson where it gives the same
    value (:func:`verifier.issuance.loads_like`); invalid fields go to the app's
    RequestValidationError handler, as FastAPI would send them."""
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"unsupported content type {content_type or '(none)'}: send application/json"
        )
    value = loads_like(raw, _json_body)
    if type(value) is not dict:
        raise BadRequest('the request is a JSON object: {"credential": …, "at": …, "relyingParty": …}')
    try:
        return VerifyRequest.model_validate(value)
    except ValidationError as exc:  # the app's one handler for invalid requests shapes it
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


@router.post("/verify", openapi_extra=_BODY_SCHEMA)
async def verify(request: Request, p: AnyPrincipal):
    """Run every check of the offline verifier against the registry's current trust bundle.

    Body: ``{"credential": <holder copy, object or JSON text>, "at": RFC 3339 time (default now),
    "relyingParty": credit code, "purpose": text, "data": the dataset, base64}``."""
    from verifier.issuance import parse_datetime

    ctx = request.app.state.ctx  # (not a dependency: each costs ~15 µs of FastAPI's solving)
    body = _parse(await request.body(), request.headers.get("content-type"))
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
    v = await current_verifier(ctx)
    result = v.verify(
        body.credential, at=at, data=data, relying_party=body.relyingParty, purpose=body.purpose
    )
    # plain JSON of str/bool/None values: orjson writes it without FastAPI's generic encoder pass
    return Response(orjson.dumps(result.to_json()), media_type="application/json")
