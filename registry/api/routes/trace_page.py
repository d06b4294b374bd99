"""The regulator's trace page (server-rendered, one small bundled script, no external resources):
the flow graph for an asset, an organisation, a jurisdiction or a time window, violations
highlighted, a table beneath, client-side filters, and each edge linked to its chain transaction
(`/trace/tx/{hash}`, decoded from the chain by the registry itself).

Signing in posts an API key once; it is kept in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from registry.api.deps import CtxDep
from registry.core.errors import RegistryError
from registry.flows import render, rules, schemas
from registry.flows import trace as flow_trace
from registry.services import jurisdictions as J
from registry.services.context import ServiceContext
from registry.services.orgs import Principal, authenticate

router = APIRouter(tags=["pages"], include_in_schema=False)

PACKAGE = Path(__file__).resolve().parents[2]
#: registry/templates/trace*.html: the layout (trace.html), sign-in, the trace, a chain transaction
TEMPLATES = Environment(
    loader=FileSystemLoader(PACKAGE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
SCRIPT = (PACKAGE / "static" / "trace.js").read_bytes()
COOKIE = "certledger_key"
FILTERS = ("asset", "organisation", "jurisdiction", "from", "to")
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


async def _who(request: Request, ctx: ServiceContext) -> Principal | None:
    key = request.cookies.get(COOKIE)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    if not key:
        return None
    try:
        async with ctx.sessions() as s:
            return await authenticate(s, key)
    except RegistryError:
        return None


def _not_regulator(who: Principal, what: str = "the trace") -> str | None:
    """Why ``who`` may not see ``what``, or None if it may (regulators and admins may)."""
    if who.has("regulator", "admin"):
        return None
    return f"{who.org_name} is not a regulator: {what} is for regulators and admins"


def _page(template: str, title: str, who: Principal | None, status: int = 200, **values) -> HTMLResponse:
    body = TEMPLATES.get_template(template).render(
        title=title, heading=values.pop("heading", None), who=who, **values
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _signin(message: str = "", status: int = 200, who: Principal | None = None) -> HTMLResponse:
    return _page("trace_signin.html", "sign in", who, status, message=message)


@router.get("/trace/static/trace.js")
async def script():
    return Response(
        SCRIPT,
        media_type="text/javascript",
        headers={"cache-control": "max-age=300", "x-content-type-options": "nosniff"},
    )


@router.post("/trace/session")
async def sign_in(request: Request, ctx: CtxDep):
    raw = await request.body()
    if len(raw) > 4096:
        return _signin("the sign-in form is too large", 413)
    key = (parse_qs(raw.decode("utf-8", "replace")).get("api_key") or [""])[0].strip()
    try:
        async with ctx.sessions() as s:
            who = await authenticate(s, key)
    except RegistryError as exc:
        return _signin(exc.message, 401)
    if why := _not_regulator(who):
        return _signin(why, 403)
    resp = RedirectResponse("/trace", status_code=303)
    resp.set_cookie(
        COOKIE, key, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https"
    )
    return resp


@router.post("/trace/signout")
async def sign_out():
    resp = RedirectResponse("/trace", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


async def _trace(ctx: ServiceContext, params: dict) -> dict:
    q = flow_trace.make_query(
        asset=await flow_trace.resolve_asset(ctx, params.get("asset")),
        organisation=await flow_trace.resolve_organisation(ctx, params.get("organisation")),
        jurisdiction_code=params.get("jurisdiction"),
        since=params.get("from"),
        until=params.get("to"),
    )
    if params.get("asset"):
        q.labels["asset"] = params["asset"]
    return await flow_trace.trace_from_db(ctx, q)


def _params(request: Request) -> dict:
    return {
        k: request.query_params.get(k, "").strip()[:100]
        for k in FILTERS
        if request.query_params.get(k, "").strip()
    }


@router.get("/trace", response_class=HTMLResponse)
async def trace_page(request: Request, ctx: CtxDep):
    who = await _who(request, ctx)
    if who is None:
        return _signin()
    if why := _not_regulator(who):
        return _signin(why, 403, who)
    params = _params(request)
    try:
        trace = await _trace(ctx, params)
    except RegistryError as exc:
        return _page(
            "trace_main.html",
            "trace",
            who,
            exc.http_status if 400 <= exc.http_status < 500 else 200,
            params=params,
            error=exc.message,
        )
    return _page("trace_main.html", "trace", who, params=params, error=None, **_trace_values(trace, params))


@router.get("/trace/export.{fmt}")
async def export(fmt: str, request: Request, ctx: CtxDep):
    who = await _who(request, ctx)
    if who is None:
        return Response("sign in as a regulator first", status_code=401, media_type="text/plain")
    if why := _not_regulator(who):
        return Response(why, status_code=403, media_type="text/plain")
    if fmt not in ("json", "csv", "svg"):
        return Response("format: json, csv or svg", status_code=404, media_type="text/plain")
    try:
        trace = await _trace(ctx, _params(request))
        body, media = render.render(trace, fmt, request.query_params.get("table", "flows"))
    except RegistryError as exc:
        return Response(exc.message, status_code=exc.http_status, media_type="text/plain")
    return Response(
        body,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="flow-trace.{fmt}"', **HEADERS},
    )


@router.get("/trace/tx/{tx_hash}", response_class=HTMLResponse)
async def transaction(tx_hash: str, request: Request, ctx: CtxDep):
    """A chain transaction of the data-flow ledger, read from the chain and decoded."""
    who = await _who(request, ctx)
    if who is None:
        return _signin("sign in to see chain transactions", 401)
    if why := _not_regulator(who, "chain transactions"):
        return _signin(why, 403, who)
    if not flow_trace.is_hash(tx_hash):
        return _page("trace_tx.html", "transaction", who, 400, error="not a transaction hash")
    try:
        rec = await ctx.chain.receipt(tx_hash.lower())
    except RegistryError as exc:
        return _page("trace_tx.html", "transaction", who, 503, error=exc.message)
    if rec is None:
        return _page(
            "trace_tx.html", "transaction", who, 404, error=f"no transaction {tx_hash} on this chain"
        )
    block = await ctx.chain.w3.eth.get_block(rec["blockNumber"])
    from web3.logs import DISCARD

    rows = [
        (("交易", "transaction"), schemas.hexs(rec["transactionHash"])),
        (("状态", "status"), "success" if rec["status"] == 1 else "failed"),
        (("区块", "block"), f"{rec['blockNumber']} ({schemas.iso(int(block['timestamp']))})"),
        (("发送方", "from"), rec["from"]),
        (("接收合约", "to"), rec["to"]),
        (("燃料用量", "gas used"), str(rec["gasUsed"])),
        (("链编号", "chain id"), str(ctx.deployment.chain_id)),
    ]
    events = []
    for name in ("FlowDeclared", "FlowDecided"):
        for ev in getattr(ctx.chain.flows.events, name)().process_receipt(rec, errors=DISCARD):
            events.append((name, {k: _show(v) for k, v in dict(ev["args"]).items()}))
    return _page("trace_tx.html", f"transaction {tx_hash[:10]}…", who, rows=rows, events=events, error=None)


def _show(v) -> str:
    if isinstance(v, (bytes, bytearray)):
        raw = bytes(v)
        if len(raw) == 8:
            return f"{J.from_bytes8(raw)} (0x{raw.hex()})"
        return "0x" + raw.hex()
    if isinstance(v, dict) or hasattr(v, "items"):
        return "; ".join(f"{k}={_show(x)}" for k, x in dict(v).items())
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return str(v)


def _trace_values(trace: dict, params: dict) -> dict:
    """What trace_main.html shows of ``trace`` (the graph is the registry's own SVG, render.to_svg)."""
    table = rules.load()
    level_names = table.raw["levelNames"]

    def level_of(rule: dict | None) -> dict:
        if not rule:
            return {}
        return level_names.get(rule["requires"], {"zh": rule["requires"], "en": rule["requires"]})

    return {
        "trace": trace,
        "nodes": {n["id"]: n for n in trace["nodes"]},
        "bad": {v["flowId"] for v in trace["violations"]},
        "qs": urlencode(params),
        "qs_violations": urlencode({**params, "table": "violations"}),
        "legend": list(render.STATUS_COLOURS.items()) + [("violation", render.VIOLATION_COLOUR)],
        "svg": Markup(render.to_svg(trace)),
        "level_of": level_of,
        "table": table,
        "pub": table.public(),
    }
