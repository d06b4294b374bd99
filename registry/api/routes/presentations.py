"""The holder page and the verify page's "request a presentation" (issue #19; FORMAT.md §13.3).

No API key anywhere: the bank clerk and the enterprise use the public pages. Every route is
rate-limited per client like the verify page's checks. The holder key never comes here: the holder
page asks for the digest to sign (``/holder/prepare``), signs it in the browser and sends the
signed presentation straight to the request it answers.

- ``GET  /holder``                                    the holder page (``?request=<nonce>``)
- ``GET  /holder/static/holder.js|holder-crypto.js|holder-scan.js``
- ``POST /holder/prepare``                            credential(s) + paths to redact + request +
                                                      holder id → the unsigned presentation and its digest
- ``POST /verify/requests``                           {audience, purpose, ttlSeconds?, credentialTypes?}
                                                      → the request, the holder link and its QR (SVG)
- ``GET  /verify/requests/{nonce}``                   the request (for the holder page)
- ``POST /verify/requests/{nonce}/presentation``      the signed presentation → verified at once; the
                                                      answer has the result, its link and a QR of it
- ``GET  /verify/requests/{nonce}/result``            {state: pending|answered, result}
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from functools import cache
from string import Template
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse

from registry.api.deps import CtxDep, public_rate_limit
from registry.api.routes.pages import HEADERS, PACKAGE, static_response
from registry.core.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from registry.services.context import ServiceContext
from registry.services.exchange import result_json
from verifier import PresentationRequest, redact, unsigned_presentation, verify_presentation
from verifier.errors import CertledgerVerifyError, InvalidPresentation

router = APIRouter(tags=["pages"])

MAX_BODY = 4 * 1024 * 1024  # a presentation of a few credentials is tens of KB
MAX_CREDENTIALS = 10
_NONCE = re.compile(r"^0x[0-9a-f]{32,128}$")
HOLDER_STATIC = {
    "holder.js": "text/javascript; charset=utf-8",
    "holder-crypto.js": "text/javascript; charset=utf-8",
    "holder-scan.js": "text/javascript; charset=utf-8",
}


@cache
def _template() -> Template:
    return Template((PACKAGE / "templates" / "holder.html").read_text(encoding="utf-8"))


async def _json(request: Request) -> Any:
    if (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body is over {MAX_BODY // (1024 * 1024)} MiB")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _linked(ctx: ServiceContext, path: str) -> dict[str, str]:
    """A link on the registry's public URL, and a QR code of it (SVG, base64)."""
    from registry.services.qr import qr_svg

    link = ctx.settings.public_url.rstrip("/") + path
    return {"link": link, "qrSvg": base64.b64encode(qr_svg(link)).decode()}


def _nonce(nonce: str) -> str:
    if not _NONCE.fullmatch(nonce):
        raise NotFound("no such presentation request (a nonce is 0x + 32 to 128 lower-case hex digits)")
    return nonce


# -- the holder page ------------------------------------------------------------------------------
@router.get("/holder", response_class=HTMLResponse, include_in_schema=False)
async def holder_page(request: Request):
    """The holder page; ``?request=<nonce>`` (the link in the bank's request QR) loads that request."""
    nonce = request.query_params.get("request", "")[:130]
    body = _template().substitute(request=nonce if _NONCE.fullmatch(nonce) else "")
    return HTMLResponse(body, headers=HEADERS)


@router.get("/holder/static/{name}", include_in_schema=False)
async def holder_static(name: str):
    return static_response(name, HOLDER_STATIC)


@router.post("/holder/prepare", dependencies=[Depends(public_rate_limit)], include_in_schema=False)
async def holder_prepare(request: Request):
    """``{credentials: [holder copy…], redact: [[JSON Pointer…]…], request, holder}`` → ``{presentation,
    digest}``: each credential redacted as the holder chose and the digest its key signs (in the
    browser). The registry sees what the holder will disclose to the bank anyway, never the key."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body is a JSON object {credentials, redact, request, holder}")
    credentials, paths = body.get("credentials"), body.get("redact") or []
    if not isinstance(credentials, list) or not 1 <= len(credentials) <= MAX_CREDENTIALS:
        raise BadRequest(f"credentials must be a list of 1 to {MAX_CREDENTIALS} holder copies")
    if (
        not isinstance(paths, list)
        or len(paths) > len(credentials)
        or not all(isinstance(p, list) and all(isinstance(x, str) for x in p) for p in paths)
    ):
        raise BadRequest("redact must be a list (one per credential) of lists of JSON Pointers")
    try:
        req = PresentationRequest.from_json(body.get("request"))
        shown = [redact(c, paths[i]) if i < len(paths) and paths[i] else c for i, c in enumerate(credentials)]
        presentation, digest = unsigned_presentation(req, shown, body.get("holder"))
    except CertledgerVerifyError as exc:  # a bad request, credential or path: named
        raise BadRequest(str(exc)) from None
    return {"presentation": presentation, "digest": "0x" + digest.hex()}


# -- the relying party's request ------------------------------------------------------------------
@router.post("/verify/requests", dependencies=[Depends(public_rate_limit)], include_in_schema=False)
async def open_request(request: Request, ctx: CtxDep):
    """Open a presentation request; the answer has the holder link and a QR code of it (SVG, base64)."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body is a JSON object {audience, purpose, ttlSeconds, credentialTypes}")
    unknown = set(body) - {"audience", "purpose", "ttlSeconds", "credentialTypes"}
    if unknown:
        raise BadRequest(f"unknown member {sorted(unknown)[0]!r}")
    try:
        req = ctx.exchange.open(
            body.get("audience"), body.get("purpose"), body.get("ttlSeconds"), body.get("credentialTypes")
        )
    except InvalidPresentation as exc:
        raise BadRequest(str(exc)) from None
    holder = _linked(ctx, f"/holder?request={req.nonce}")
    return JSONResponse(
        {"request": req.to_json(), "holderLink": holder["link"], "qrSvg": holder["qrSvg"]}, status_code=201
    )


@router.get("/verify/requests/{nonce}", dependencies=[Depends(public_rate_limit)], include_in_schema=False)
async def read_request(ctx: CtxDep, nonce: str):
    return ctx.exchange.get(_nonce(nonce)).request.to_json()


@router.post(
    "/verify/requests/{nonce}/presentation",
    dependencies=[Depends(public_rate_limit)],
    include_in_schema=False,
)
async def answer_request(request: Request, ctx: CtxDep, nonce: str):
    """Verify the presentation against the request it answers (and the registry's trust bundle), and
    keep the result for the bank's page. One answer per request: a second is refused (409)."""
    from registry.services.bundle import current_verifier

    entry = ctx.exchange.unanswered(_nonce(nonce))  # (refused before the work of verifying)
    presentation = await _json(request)
    verifier = await current_verifier(ctx)
    try:
        result = await asyncio.to_thread(verify_presentation, presentation, entry.request, verifier=verifier)
    except InvalidPresentation as exc:
        raise BadRequest(str(exc)) from None
    shown = result_json(result)
    ctx.exchange.answer(nonce, shown)
    verdict = _linked(ctx, f"/verify?presentation={nonce}")
    return {
        "result": shown,
        "resultLink": verdict["link"],
        "qrSvg": verdict["qrSvg"],
        "expires": entry.request.expires,
    }


@router.get("/verify/requests/{nonce}/result", include_in_schema=False)  # polled: a dict lookup, not limited
async def request_result(ctx: CtxDep, nonce: str):
    entry = ctx.exchange.get(_nonce(nonce))
    return {
        "state": "pending" if entry.result is None else "answered",
        "request": entry.request.to_json(),
        "result": entry.result,
    }
