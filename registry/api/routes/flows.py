"""Cross-border data flows: declare (exporter, certificate holder or parent importer), decide
(regulator), report receipt (importer), read, trace (regulator / admin) as JSON, CSV or SVG."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from registry.api.deps import AnyPrincipal, CtxDep, RequestId
from registry.api.openapi import also, link
from registry.core.errors import Forbidden
from registry.flows import decide, ledger, render, schemas
from registry.flows import rules as flows_rules
from registry.flows import trace as flow_trace
from registry.services import collateral

router = APIRouter(prefix="/v1/flows", tags=["flows"])

FlowId = Path(..., ge=1, le=schemas.MAX_JS_INT, description="the on-chain flow id")


def _json_body(model) -> dict:
    """A body the route parses itself (schemas.parse_body), declared for the OpenAPI document."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            },
        }
    }


_FLOW_ID = "$response.body#/flowId"


@router.post(
    "",
    status_code=201,
    openapi_extra=_json_body(schemas.DeclarationIn),
    responses={
        201: {
            "description": "declared",
            "links": {
                "GetFlow": link("get_flow", "the flow just declared", flow_id=_FLOW_ID),
                "DecideFlow": link("decide_flow", "the regulator's decision on it", flow_id=_FLOW_ID),
            },
        }
    },
)
async def declare_flow(request: Request, ctx: CtxDep, p: AnyPrincipal, rid: RequestId):
    """Declare a flow (role exporter). An original flow names an asset certificate its caller holds
    (`credentialId`, or the holder copy as `credential`); an onward transfer names `parentFlowId`
    and is declared by the parent's importer. Anchored on-chain with the certificate's proof."""
    body = schemas.parse_body(schemas.DeclarationIn, await request.body())
    return await ledger.declare(ctx, p, body, rid)


@router.get(
    "/trace",
    responses={
        200: {
            "description": "the trace (JSON), a table (CSV) or the graph (SVG)",
            "content": {"application/json": {}, "text/csv": {}, "image/svg+xml": {}},
        },
        **also(404),
    },
)
async def trace_flows(
    ctx: CtxDep,
    p: AnyPrincipal,
    asset: str | None = Query(None, max_length=100, description="certificate id or asset leaf (0x…)"),
    organisation: str | None = Query(
        None, max_length=100, description="organisation id, identifier or participant id"
    ),
    jurisdiction: str | None = Query(None, max_length=8, description="flows from or to it (CN covers CN-GD)"),
    from_: str | None = Query(None, alias="from", max_length=40, description="declared at or after"),
    to: str | None = Query(None, max_length=40, description="declared at or before"),
    format: Literal["json", "csv", "svg"] = "json",
    table: Literal["flows", "violations", "totals", "exporters"] = Query("flows", description="for CSV"),
):
    """The flow graph, totals per jurisdiction pair and violations (regulators and admins)."""
    if not p.has("regulator", "admin"):
        raise Forbidden("tracing flows needs the role regulator (or admin)")
    q = flow_trace.make_query(
        asset=await flow_trace.resolve_asset(ctx, asset),
        organisation=await flow_trace.resolve_organisation(ctx, organisation),
        jurisdiction_code=jurisdiction,
        since=from_,
        until=to,
    )
    if asset:
        q.labels["asset"] = asset
    result = await flow_trace.trace_from_db(ctx, q)
    if asset and not flow_trace.is_hash(asset):
        # the asset's registration and pledge history (PledgeRegistry events: the node's word)
        history = await collateral.asset_history_of(ctx, asset)
        if history is not None:
            result["assetHistory"] = history
    if format == "json":
        return result
    body, media = render.render(result, format, table)
    headers = (
        {"content-disposition": f'attachment; filename="flow-trace.{format}"'} if format == "csv" else {}
    )
    return Response(body, media_type=media, headers=headers)


@router.get("/rules")
async def rule_tables():
    """The rule table in force (FORMAT.md §11.1): each rule with what it requires and its source
    (instrument, article, date in force), the thresholds, which level each legal basis covers, the
    GBA scope and the filing deadlines. Public: the regulation is."""
    return flows_rules.load().public()


@router.get("/{flow_id}")
async def get_flow(ctx: CtxDep, p: AnyPrincipal, flow_id: int = FlowId):
    """One flow: its declaration, decision and receipt (exporter, importer, regulators, admins)."""
    return await ledger.get_flow(ctx, p, flow_id)


@router.post("/{flow_id}/decision", openapi_extra=_json_body(schemas.DecisionIn))
async def decide_flow(request: Request, ctx: CtxDep, p: AnyPrincipal, rid: RequestId, flow_id: int = FlowId):
    """Approve or reject a pending flow (role regulator): `{"decision": "approved"|"rejected", "reason"}`."""
    body = schemas.parse_body(schemas.DecisionIn, await request.body(), 16 * 1024)
    return await decide.decide(ctx, p, flow_id, body, rid)


@router.post("/{flow_id}/receipt", openapi_extra=_json_body(schemas.ReceiptIn))
async def report_flow_receipt(
    request: Request, ctx: CtxDep, p: AnyPrincipal, rid: RequestId, flow_id: int = FlowId
):
    """The importer reports the digest of the payload it received: `{"payloadDigest": "0x…"}`."""
    body = schemas.parse_body(schemas.ReceiptIn, await request.body(), 4 * 1024)
    return await ledger.report_receipt(ctx, p, flow_id, body, rid)
