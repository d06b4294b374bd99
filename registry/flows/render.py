"""The trace written out: JSON, CSV (flows, violations or totals) and SVG."""

from __future__ import annotations

import csv
import html
import io
import json

from registry.core.errors import (
    BadRequest,
)


# -- exports -----------------------------------------------------------------------------------
def to_json(trace: dict) -> str:
    return json.dumps(trace, ensure_ascii=False, indent=2)


CSV_TABLES = {
    "flows": (
        "flowId",
        "parentFlowId",
        "status",
        "fromJurisdiction",
        "toJurisdiction",
        "exporterName",
        "from",
        "importerName",
        "to",
        "credentialId",
        "assetLeaf",
        "declaredAt",
        "decidedAt",
        "decisionReason",
        "legalBasis",
        "personalInformation",
        "personalInformationSubjects",
        "volume",
        "purpose",
        "dataCategories",
        "payloadDigest",
        "receivedDigest",
        "declarationHash",
        "declaredTx",
        "decidedTx",
        "violations",
        "sensitivePersonalInformationSubjects",
        "rule",
        "ruleRequires",
        "ruleCovered",
        "ruleArticle",
    ),
    "violations": ("flowId", "kind", "source", "message", "flows"),
    "totals": ("from", "to", "flows", "approved", "pending", "rejected", "volume"),
    "exporters": (
        "exporter",
        "exporterName",
        "year",
        "subjects",
        "sensitiveSubjects",
        "flows",
        "thresholdsReached",
    ),
}


def _csv_rows(trace: dict, table: str) -> list[dict]:
    if table == "flows":
        return [
            e
            | {
                "rule": (e.get("rule") or {}).get("rule"),
                "ruleRequires": (e.get("rule") or {}).get("requires"),
                "ruleCovered": (e.get("rule") or {}).get("covered"),
                "ruleArticle": ((e.get("rule") or {}).get("source") or {}).get("article"),
            }
            for e in trace["edges"]
        ]
    if table == "violations":
        return [v | {"flows": v["details"].get("flows")} for v in trace["violations"]]
    if table == "exporters":
        return [
            t | {"thresholdsReached": [x["id"] for x in t["thresholds"] if x["reached"]]}
            for t in trace.get("exporterTotals", [])
        ]
    return trace["totals"]


def to_csv(trace: dict, table: str = "flows") -> str:
    if table not in CSV_TABLES:
        raise BadRequest(f"unknown table {table!r}: flows, violations, totals or exporters")
    cols = CSV_TABLES[table]
    rows = _csv_rows(trace, table)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    for r in rows:
        out = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, list):
                v = ";".join(map(str, v))
            elif isinstance(v, bool):
                v = "true" if v else "false"
            elif v is None:
                v = ""
            out.append(_csv_safe(str(v)))
        w.writerow(out)
    return buf.getvalue()


def _csv_safe(v: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in free text."""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") and not _looks_numeric(v) else v


def _looks_numeric(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


STATUS_COLOURS = {"approved": "#2e7d32", "pending": "#b7791f", "rejected": "#8a8a8a"}
VIOLATION_COLOUR = "#d32f2f"


def to_svg(trace: dict, *, tx_link: str = "/trace/tx/{tx}") -> str:
    """The flow graph as a standalone SVG: nodes in columns by depth, edges coloured by status,
    violations in red; each edge links to its declaring transaction."""
    nodes = {n["id"]: n for n in trace["nodes"]}
    edges = trace["edges"]
    depth = {nid: 0 for nid in nodes}
    for _ in range(len(nodes)):  # longest path, bounded (cycles from the chain stay finite)
        changed = False
        for e in edges:
            if (
                e["from"] != e["to"]
                and depth[e["to"]] < depth[e["from"]] + 1
                and depth[e["from"]] + 1 < len(nodes)
            ):
                depth[e["to"]] = depth[e["from"]] + 1
                changed = True
        if not changed:
            break
    cols: dict[int, list[str]] = {}
    for nid in sorted(nodes, key=lambda i: (depth[i], nodes[i]["jurisdictions"], nodes[i]["name"] or "", i)):
        cols.setdefault(depth[nid], []).append(nid)
    row: dict[str, float] = {}
    for d in sorted(cols):  # order each column by its parents' rows (fewer crossings)
        if d > 0:

            def bary(nid: str) -> float:
                ups = [row[x["from"]] for x in edges if x["to"] == nid and x["from"] in row]
                return sum(ups) / len(ups) if ups else float("inf")

            cols[d].sort(key=bary)
        row.update({nid: r for r, nid in enumerate(cols[d])})
    W, H, GX, GY, M = 200, 58, 300, 120, 40
    pos = {nid: (M + d * GX, M + 30 + r * GY) for d, ids in cols.items() for r, nid in enumerate(ids)}
    width = M * 2 + max([d for d in cols] or [0]) * GX + W
    height = M * 2 + 30 + max([len(v) for v in cols.values()] or [1]) * GY
    e = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'class="flow-graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="12" role="img" aria-label="data flow graph">',
        "<title>certledger data flow trace</title>",
        "<defs>",
    ]
    for name, colour in list(STATUS_COLOURS.items()) + [("violation", VIOLATION_COLOUR)]:
        out.append(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="12" '
            f'markerHeight="12" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append(
        f'<text x="{M}" y="{M - 10}" font-size="14" font-weight="bold">'
        f"{len(edges)} flows, {len(trace['violations'])} violations</text>"
    )
    pair_seen: dict[tuple[str, str], int] = {}
    for ed in edges:
        x1, y1 = pos[ed["from"]]
        x2, y2 = pos[ed["to"]]
        k = pair_seen.get((ed["from"], ed["to"]), 0)
        pair_seen[(ed["from"], ed["to"])] = k + 1
        bend = (k - 0) * 26
        viol = bool(ed["violations"])
        colour = VIOLATION_COLOUR if viol else STATUS_COLOURS.get(ed["status"], "#555")
        marker = "violation" if viol else ed["status"]
        if x2 > x1:
            sx, sy, tx_, ty = x1 + W, y1 + H / 2 + bend / 3, x2, y2 + H / 2 + bend / 3
            c1, c2 = (sx + (tx_ - sx) / 2, sy - bend), (sx + (tx_ - sx) / 2, ty - bend)
        else:  # same column or backwards: loop out to the right
            sx, sy, tx_, ty = x1 + W, y1 + H / 2, x2 + W, y2 + H / 2
            off = 80 + bend
            c1, c2 = (sx + off, sy), (tx_ + off, ty)
        d = f"M{sx:.1f},{sy:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {tx_:.1f},{ty:.1f}"
        mx = 0.125 * sx + 0.375 * c1[0] + 0.375 * c2[0] + 0.125 * tx_
        my = 0.125 * sy + 0.375 * c1[1] + 0.375 * c2[1] + 0.125 * ty
        dash = ' stroke-dasharray="6 4"' if ed["status"] == "rejected" else ""
        cls = f"edge status-{e(ed['status'])}" + (" violation" if viol else "")
        title = f"flow {ed['flowId']}: {ed['fromJurisdiction']} → {ed['toJurisdiction']}, {ed['status']}" + (
            f" — violations: {', '.join(ed['violations'])}" if viol else ""
        )
        href = e(tx_link.format(tx=ed["declaredTx"]))
        out.append(
            f'<a href="{href}" xlink:href="{href}" class="{cls}" data-flow-id="{ed["flowId"]}" '
            f'data-status="{e(ed["status"])}" data-violation="{"1" if viol else "0"}" '
            f'data-violations="{e(" ".join(ed["violations"]))}" '
            f'data-rule="{e((ed.get("rule") or {}).get("rule") or "")}" '
            f'data-from-jurisdiction="{e(ed["fromJurisdiction"])}" data-to-jurisdiction="{e(ed["toJurisdiction"])}">'
            f"<title>{e(title)}</title>"
            f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{4 if viol else 2.5}"{dash} '
            f'marker-end="url(#arrow-{marker})"/>'
            f'<path d="{d}" fill="none" stroke="transparent" stroke-width="14"/>'
            f'<text x="{mx:.1f}" y="{my - 6:.1f}" text-anchor="middle" fill="{colour}" paint-order="stroke" '
            f'stroke="#fff" stroke-width="3" '
            f'font-weight="{"bold" if viol else "normal"}">#{ed["flowId"]} {e(ed["status"])}'
            f"{' ⚠' if viol else ''}</text></a>"
        )
    for nid, n in nodes.items():
        x, y = pos[nid]
        label = n["name"] or (nid[:10] + "…" + nid[-4:])
        if len(label) > 24:
            label = label[:23] + "…"
        out.append(
            f'<g class="node" data-node-id="{e(nid)}" data-jurisdictions="{e(" ".join(n["jurisdictions"]))}">'
            f"<title>{e((n['name'] or '') + ' ' + (n['identifier'] or nid))}</title>"
            f'<rect x="{x}" y="{y}" width="{W}" height="{H}" rx="8" fill="#f4f6fb" stroke="#34495e"/>'
            f'<text x="{x + 10}" y="{y + 22}" font-weight="bold">{e(label)}</text>'
            f'<text x="{x + 10}" y="{y + 42}" fill="#34495e">{e(", ".join(n["jurisdictions"]))}'
            f"{'  ' + e(n['identifier']) if n['identifier'] else ''}</text></g>"
        )
    totals = trace.get("exporterTotals") or []
    if totals:  # the annual totals per exporter against each threshold (FORMAT.md §11.2)
        y0 = height
        height += 24 + 18 * len(totals)
        out[0] = out[0].replace(
            f'height="{y0}" viewBox="0 0 {width} {y0}"', f'height="{height}" viewBox="0 0 {width} {height}"'
        )
        out.append(
            f'<g class="exporter-totals"><text x="{M}" y="{y0 + 4}" font-weight="bold">'
            "annual totals per exporter (people, since 1 January)</text>"
        )
        for i, t in enumerate(totals):
            reached = [x["id"] for x in t["thresholds"] if x["reached"]]
            out.append(
                f'<text x="{M}" y="{y0 + 22 + 18 * i}" class="exporter-total" data-exporter="{e(t["exporter"])}" '
                f'data-year="{t["year"]}" data-subjects="{t["subjects"]}" '
                f'data-reached="{e(" ".join(reached))}">{e(t["exporterName"] or t["exporter"])} {t["year"]}: '
                f"{t['subjects']:,} people, {t['sensitiveSubjects']:,} sensitive; flows "
                f"{e(', '.join(map(str, t['flows'])))}; thresholds reached: {e(', '.join(reached) or 'none')}"
                "</text>"
            )
        out.append("</g>")
    violations = trace["violations"]
    out.append(
        '<g class="violations">'
        + "".join(
            f'<desc class="violation" data-flow-id="{v["flowId"]}" data-kind="{e(v["kind"])}">{e(v["message"])}</desc>'
            for v in violations
        )
        + "</g>"
    )
    out.append("</svg>")
    return "\n".join(out)


def render(trace: dict, fmt: str, table: str = "flows") -> tuple[str, str]:
    """(body, media type) for format json | csv | svg."""
    if fmt == "json":
        return to_json(trace), "application/json"
    if fmt == "csv":
        return to_csv(trace, table), "text/csv; charset=utf-8"
    if fmt == "svg":
        return to_svg(trace), "image/svg+xml"
    raise BadRequest(f"unknown format {fmt!r}: json, csv or svg")
