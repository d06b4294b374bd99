"""The regulator's trace page (server-rendered, one small bundled script, no external resources):
the flow graph for an asset, an organisation, a jurisdiction or a time window, violations
highlighted, a table beneath, client-side filters, and each edge linked to its chain transaction
(`/trace/tx/{hash}`, decoded from the chain by the registry itself).

Signing in posts an API key once; it is kept in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from registry.core.errors import RegistryError
from registry.flows import render, rules, schemas
from registry.flows import trace as flow_trace
from registry.services import jurisdictions as J
from registry.services.orgs import Principal, authenticate

router = APIRouter(tags=["pages"], include_in_schema=False)

PACKAGE = Path(__file__).resolve().parents[2]
TEMPLATE = Template((PACKAGE / "templates" / "trace.html").read_text(encoding="utf-8"))
SCRIPT = (PACKAGE / "static" / "trace.js").read_bytes()
COOKIE = "certledger_key"
FILTERS = ("asset", "organisation", "jurisdiction", "from", "to")
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
e = html.escape


async def _who(request: Request) -> Principal | None:
    key = request.cookies.get(COOKIE)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    if not key:
        return None
    try:
        async with request.app.state.ctx.sessions() as s:
            return await authenticate(s, key)
    except RegistryError:
        return None


def _not_regulator(who: Principal, what: str = "the trace") -> str | None:
    """Why ``who`` may not see ``what``, or None if it may (regulators and admins may)."""
    if who.has("regulator", "admin"):
        return None
    return f"{who.org_name} is not a regulator: {what} is for regulators and admins"


def _page(title: str, content: str, who: Principal | None, status: int = 200) -> HTMLResponse:
    signout = ('<form method="post" action="/trace/signout"><button class="secondary" type="submit">Sign out</button>'
               "</form>") if who else ""
    body = TEMPLATE.substitute(title=e(title), content=content, signout=signout,
                               who=e(f"{who.org_name} ({', '.join(who.roles)})") if who else "not signed in")
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _signin(message: str = "", status: int = 200, who: Principal | None = None) -> HTMLResponse:
    note = f'<p class="error">{e(message)}</p>' if message else ""
    return _page("sign in", f"""{note}
<form method="post" action="/trace/session" id="signin">
<fieldset><legend>Sign in as a regulator</legend>
<label>API key<input type="password" name="api_key" autocomplete="off" required></label>
<button type="submit">Sign in</button></fieldset></form>
<p class="muted">The trace of cross-border data flows is for data-customs regulators (and admins).</p>""",
                 who, status)


@router.get("/trace/static/trace.js")
async def script():
    return Response(SCRIPT, media_type="text/javascript", headers={"cache-control": "max-age=300",
                                                                   "x-content-type-options": "nosniff"})


@router.post("/trace/session")
async def sign_in(request: Request):
    raw = await request.body()
    if len(raw) > 4096:
        return _signin("the sign-in form is too large", 413)
    key = (parse_qs(raw.decode("utf-8", "replace")).get("api_key") or [""])[0].strip()
    try:
        async with request.app.state.ctx.sessions() as s:
            who = await authenticate(s, key)
    except RegistryError as exc:
        return _signin(exc.message, 401)
    if why := _not_regulator(who):
        return _signin(why, 403)
    resp = RedirectResponse("/trace", status_code=303)
    resp.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/trace/signout")
async def sign_out():
    resp = RedirectResponse("/trace", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


async def _trace(request: Request, params: dict) -> dict:
    ctx = request.app.state.ctx
    q = flow_trace.make_query(asset=await flow_trace.resolve_asset(ctx, params.get("asset")),
                     organisation=await flow_trace.resolve_organisation(ctx, params.get("organisation")),
                     jurisdiction_code=params.get("jurisdiction"), since=params.get("from"), until=params.get("to"))
    if params.get("asset"):
        q.labels["asset"] = params["asset"]
    return await flow_trace.trace_from_db(ctx, q)


def _params(request: Request) -> dict:
    return {k: request.query_params.get(k, "").strip()[:100] for k in FILTERS if request.query_params.get(k, "").strip()}


@router.get("/trace", response_class=HTMLResponse)
async def trace_page(request: Request):
    who = await _who(request)
    if who is None:
        return _signin()
    if why := _not_regulator(who):
        return _signin(why, 403, who)
    params = _params(request)
    form = _filters_form(params)
    try:
        trace = await _trace(request, params)
    except RegistryError as exc:
        return _page("trace", form + f'<p class="error" id="trace-error">{e(exc.message)}</p>', who,
                     exc.http_status if 400 <= exc.http_status < 500 else 200)
    return _page("trace", form + _render_trace(trace, params), who)


@router.get("/trace/export.{fmt}")
async def export(fmt: str, request: Request):
    who = await _who(request)
    if who is None:
        return Response("sign in as a regulator first", status_code=401, media_type="text/plain")
    if why := _not_regulator(who):
        return Response(why, status_code=403, media_type="text/plain")
    if fmt not in ("json", "csv", "svg"):
        return Response("format: json, csv or svg", status_code=404, media_type="text/plain")
    try:
        trace = await _trace(request, _params(request))
        body, media = render.render(trace, fmt, request.query_params.get("table", "flows"))
    except RegistryError as exc:
        return Response(exc.message, status_code=exc.http_status, media_type="text/plain")
    return Response(body, media_type=media,
                    headers={"content-disposition": f'attachment; filename="flow-trace.{fmt}"', **HEADERS})


@router.get("/trace/tx/{tx_hash}", response_class=HTMLResponse)
async def transaction(tx_hash: str, request: Request):
    """A chain transaction of the data-flow ledger, read from the chain and decoded."""
    who = await _who(request)
    if who is None:
        return _signin("sign in to see chain transactions", 401)
    if why := _not_regulator(who, "chain transactions"):
        return _signin(why, 403, who)
    if not flow_trace.is_hash(tx_hash):
        return _page("transaction", '<p class="error">not a transaction hash</p>', who, 400)
    ctx = request.app.state.ctx
    try:
        rec = await ctx.chain.receipt(tx_hash.lower())
    except RegistryError as exc:
        return _page("transaction", f'<p class="error">{e(exc.message)}</p>', who, 503)
    if rec is None:
        return _page("transaction", f'<p class="error">no transaction {e(tx_hash)} on this chain</p>', who, 404)
    block = await ctx.chain.w3.eth.get_block(rec["blockNumber"])
    from web3.logs import DISCARD

    rows = [("transaction", schemas.hexs(rec["transactionHash"])), ("status", "success" if rec["status"] == 1 else "failed"),
            ("block", f'{rec["blockNumber"]} ({schemas.iso(int(block["timestamp"]))})'), ("from", rec["from"]),
            ("to", rec["to"]), ("gas used", str(rec["gasUsed"])), ("chain id", str(ctx.deployment.chain_id))]
    events = []
    for name in ("FlowDeclared", "FlowDecided"):
        for ev in getattr(ctx.chain.flows.events, name)().process_receipt(rec, errors=DISCARD):
            args = {k: _show(v) for k, v in dict(ev["args"]).items()}
            events.append(f'<h3>{name}</h3><table class="event" data-event="{name}">' + "".join(
                f"<tr><th>{e(k)}</th><td class=\"mono\">{e(v)}</td></tr>" for k, v in args.items()) + "</table>")
    content = ('<p><a href="/trace">← back to the trace</a></p><table id="tx">' + "".join(
        f'<tr><th>{e(k)}</th><td class="mono">{e(str(v))}</td></tr>' for k, v in rows) + "</table>"
        + ("".join(events) or '<p class="muted">no data-flow ledger events in this transaction</p>'))
    return _page(f"transaction {tx_hash[:10]}…", content, who)


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


def _filters_form(params: dict) -> str:
    def field(name, label, placeholder=""):
        return (f'<label>{label}<input type="text" name="{name}" value="{e(params.get(name, ""))}" '
                f'placeholder="{e(placeholder)}"></label>')

    return ('<form method="get" action="/trace" id="filters"><fieldset class="filters"><legend>Trace</legend>'
            + field("asset", "Asset (certificate id or leaf)", "urn:uuid:… or 0x…")
            + field("organisation", "Organisation (identifier or id)", "91440101… or HK-BR-…")
            + field("jurisdiction", "Jurisdiction", "CN-GD, HK, SG…")
            + field("from", "Declared from", "2026-01-01") + field("to", "Declared to", "2026-12-31")
            + '<button type="submit">Load trace</button> <a href="/trace">clear</a></fieldset></form>')


def _render_trace(trace: dict, params: dict) -> str:
    edges, violations = trace["edges"], trace["violations"]
    nodes = {n["id"]: n for n in trace["nodes"]}
    bad = {v["flowId"] for v in violations}
    qs = urlencode(params)
    cards = (f'<div class="summary"><div class="card"><b id="n-flows">{len(edges)}</b>flows</div>'
             f'<div class="card"><b>{len(nodes)}</b>organisations</div>'
             f'<div class="card"><b>{len(trace["totals"])}</b>jurisdiction pairs</div>'
             f'<div class="card{" bad" if violations else ""}"><b id="n-violations">{len(violations)}</b>violations</div>'
             f'<div class="card">export: <a href="/trace/export.json?{e(qs)}">JSON</a> · '
             f'<a href="/trace/export.csv?{e(qs)}">CSV</a> · '
             f'<a href="/trace/export.csv?{e(urlencode({**params, "table": "violations"}))}">violations CSV</a> · '
             f'<a href="/trace/export.svg?{e(qs)}">SVG</a></div></div>')
    if not edges:
        return cards + '<p class="muted" id="empty">No flows match these filters.</p>'
    vlist = ""
    if violations:
        vlist = '<h2>Violations</h2><ul class="violations" id="violations">' + "".join(
            f'<li data-flow-id="{v["flowId"]}" data-kind="{e(v["kind"])}"><span class="kind">{e(v["kind"])}</span> '
            f'{e(v["message"])} <span class="muted">({e(v["source"])})</span></li>' for v in violations) + "</ul>"
    client = ('<fieldset id="client-filters" hidden><legend>Show</legend>'
              + "".join(f'<label class="inline"><input type="checkbox" data-filter-status value="{s}" checked> '
                        f'<span class="status status-{s}">{s}</span></label>' for s in ("approved", "pending", "rejected"))
              + '<label class="inline"><input type="checkbox" id="violations-only"> violations only</label>'
              + '<label class="inline">search <input type="text" id="search" placeholder="name, code, flow id"></label>'
              + ' <span id="shown-count" class="muted"></span></fieldset>')
    legend = ('<p class="legend muted">' + "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{s}</span>'
        for s, c in list(render.STATUS_COLOURS.items()) + [("violation", render.VIOLATION_COLOUR)])
        + "— click an edge for its chain transaction</p>")
    head = ("<tr><th>flow</th><th>status</th><th>route</th><th>exporter</th><th>importer</th><th>purpose</th>"
            "<th>volume</th><th>declared</th><th>decision</th><th>" + _bi("适用规则", "rule applied")
            + "</th><th>violations</th><th>chain</th></tr>")
    body = []
    for ed in edges:
        viol = ed["flowId"] in bad
        exp, imp = nodes.get(ed["from"], {}), nodes.get(ed["to"], {})
        parent = f'<br><span class="muted">onward of #{ed["parentFlowId"]}</span>' if ed["parentFlowId"] else ""
        decision = (f'{e(ed["decidedAt"] or "")}<br>{e(ed["decisionReason"] or "")}' if ed["decidedAt"] else "—")
        links = f'<a href="/trace/tx/{e(ed["declaredTx"])}" class="tx">declared</a>'
        if ed["decidedTx"]:
            links += f' · <a href="/trace/tx/{e(ed["decidedTx"])}" class="tx">decided</a>'
        body.append(
            f'<tr class="flow-row{" violation" if viol else ""}" data-flow-id="{ed["flowId"]}" '
            f'data-status="{e(ed["status"])}" data-violation="{"1" if viol else "0"}">'
            f'<td>#{ed["flowId"]}{parent}</td><td class="status status-{e(ed["status"])}">{e(ed["status"])}</td>'
            f'<td>{e(ed["fromJurisdiction"])} → {e(ed["toJurisdiction"])}</td>'
            f'<td>{e(exp.get("name") or "")}<br><span class="mono">{e(exp.get("identifier") or ed["from"])}</span></td>'
            f'<td>{e(imp.get("name") or "")}<br><span class="mono">{e(imp.get("identifier") or ed["to"])}</span></td>'
            f'<td>{e(ed.get("purpose") or "")}</td><td>{ed["volume"]:,} B</td><td>{e(ed["declaredAt"] or "")}</td>'
            f"<td>{decision}</td><td>{_rule_cell(ed.get('rule'))}</td><td>"
            + "".join(f'<span class="kind">{e(k)}</span>' for k in ed["violations"]) + f"</td><td>{links}</td></tr>")
    totals = ("<h2>Totals per jurisdiction pair</h2><table id=\"totals\"><tr><th>from</th><th>to</th><th>flows</th>"
              "<th>approved</th><th>pending</th><th>rejected</th><th>volume</th></tr>" + "".join(
                  f'<tr><td>{e(t["from"])}</td><td>{e(t["to"])}</td><td>{t["flows"]}</td><td>{t["approved"]}</td>'
                  f'<td>{t["pending"]}</td><td>{t["rejected"]}</td><td>{t["volume"]:,} B</td></tr>'
                  for t in trace["totals"]) + "</table>")
    return (f'<section id="trace" data-flows="{len(edges)}">' + cards + vlist + client + legend
            + f'<div class="graph" id="graph">{render.to_svg(trace)}</div>'
            + f'<h2>Flows</h2><table id="flows">{head}{"".join(body)}</table>' + totals
            + _exporter_totals(trace) + _rule_table() + "</section>")


def _bi(zh: str, en: str) -> str:
    """Both languages; the page's zh / en switch shows one or both (as the verify page)."""
    return f'<span lang="zh">{e(zh)}</span> <span lang="en">{e(en)}</span>'


def _rule_cell(rule: dict | None) -> str:
    if not rule:
        return '<span class="muted">—</span>'
    level = rules.load().raw["levelNames"].get(rule["requires"], {"zh": rule["requires"], "en": rule["requires"]})
    src = rule["source"]
    return (f'<span class="rule" data-rule="{e(rule["rule"])}" data-covered="{"1" if rule["covered"] else "0"}">'
            f'<b>{e(rule["rule"])}</b><br>{_bi(level["zh"], level["en"])}'
            + ("" if rule["covered"] else f'<br><span class="covered-no">{_bi("依据不足", "basis does not cover it")}'
               "</span>")
            + f'<br><span class="muted">{e(src["ref"])} art. {e(src["article"])}</span></span>')


def _exporter_totals(trace: dict) -> str:
    """The annual totals per exporter against each threshold (FORMAT.md §11.2)."""
    totals = trace.get("exporterTotals") or []
    if not totals:
        return ""
    t0 = totals[0]["thresholds"]
    head = ("<tr><th>" + _bi("出境方", "exporter") + "</th><th>" + _bi("年度", "year") + "</th><th>"
            + _bi("个人信息（人）", "people") + "</th><th>" + _bi("敏感个人信息（人）", "sensitive (people)") + "</th>"
            + "".join(f'<th>{e(x["id"])} (≥ {x["gte"]:,})<br><span class="muted">art. {e(x["source"]["article"])}'
                      "</span></th>" for x in t0) + "<th>" + _bi("计入的出境", "flows counted") + "</th></tr>")
    rows = "".join(
        f'<tr class="exporter-total" data-exporter="{e(t["exporter"])}" data-year="{t["year"]}">'
        f'<td>{e(t["exporterName"] or t["exporter"])}</td><td>{t["year"]}</td><td>{t["subjects"]:,}</td>'
        f'<td>{t["sensitiveSubjects"]:,}</td>'
        + "".join(f'<td data-threshold="{e(x["id"])}" data-reached="{"1" if x["reached"] else "0"}">'
                  + (_bi("已达到", "reached") if x["reached"] else _bi("未达到", "not reached")) + "</td>"
                  for x in t["thresholds"])
        + f'<td>{e(", ".join("#" + str(i) for i in t["flows"]))}</td></tr>' for t in totals)
    return ("<h2>" + _bi("出境方年度累计（自1月1日起）", "Annual totals per exporter (since 1 January)") + "</h2>"
            f'<table id="exporter-totals">{head}{rows}</table>')


def _rule_table() -> str:
    """The rule table in force, every rule with its source (also at GET /v1/flows/rules)."""
    t = rules.load()
    pub = t.public()
    rows = "".join(
        f'<tr data-rule="{e(r["id"])}"><td class="mono">{e(r["id"])}</td>'
        f'<td>{_bi(pub["levelNames"][r["requires"]]["zh"], pub["levelNames"][r["requires"]]["en"])}</td>'
        f'<td>{_bi(r["text"]["zh"], r["text"]["en"])}</td>'
        f'<td>{e(r["source"]["name"])} art. {e(r["source"]["article"])} ({e(r["source"]["inForce"])})</td></tr>'
        for r in pub["rules"])
    return (f'<details id="rule-table"><summary>{_bi("出境规则表", "Rule table")} {e(t.id)} {e(t.version)} '
            '(<a href="/v1/flows/rules">JSON</a>)</summary>'
            f'<p class="muted">{e(pub["note"])}</p><table><tr><th>rule</th><th>{_bi("要求", "requires")}</th>'
            f'<th>{_bi("情形", "case")}</th><th>{_bi("依据", "source")}</th></tr>{rows}</table></details>')
