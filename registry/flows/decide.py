"""Data customs on the chain: a regulator decides a declared flow (approve or reject, with the rule
that applied), through the outbox — recorded before it is sent, applied by the request or, if the
request gave up or the process died, by the settle pass from its row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from registry.core.errors import BadRequest, ChainRejected, ChainUnavailable, Forbidden
from registry.db.models import Batch, Credential
from registry.flows.ledger import _check_certificate, _row, flow_public
from registry.flows.schemas import (
    APPROVED,
    DECISION_NAMES,
    PENDING,
    REJECTED,
    AlreadyDecided,
    DecisionIn,
    DecisionUnconfirmed,
    ParentFlowRejected,
    hexs,
)
from registry.services import audit, outbox
from registry.services.issuance import document_of
from registry.services.orgs import Principal, signing_key


async def decide(ctx, principal: Principal, flow_id: int, body: DecisionIn, request_id: str) -> dict:
    if not principal.has("regulator"):
        raise Forbidden(
            f"deciding a flow needs the role regulator; {principal.org_name} has {', '.join(principal.roles)}"
        )
    reason = body.reason.strip()
    if body.decision == "rejected" and not reason:
        raise BadRequest("a rejection needs a reason")
    async with ctx.sessions() as s:
        row = await _row(s, flow_id)
        if row.decision != PENDING:
            raise AlreadyDecided(
                f"flow {flow_id} was {DECISION_NAMES[row.decision]} already",
                details={"flowId": flow_id, "status": DECISION_NAMES[row.decision]},
            )
        if body.decision == "approved":
            cred = await s.get(Credential, row.credential_id)
            batch = await s.get(Batch, cred.batch_id)
            _check_certificate(
                cred, batch, document_of(cred, ctx.deployment), int(datetime.now(UTC).timestamp())
            )
            if row.parent_flow_id:
                parent = await _row(s, row.parent_flow_id)
                if parent.decision == REJECTED:
                    raise ParentFlowRejected(
                        f"flow {flow_id}'s parent {parent.flow_id} was rejected: reject it too"
                    )
        _, key, _ = await signing_key(s, principal.org_id, ctx.settings.passphrase())
    code = APPROVED if body.decision == "approved" else REJECTED
    rule = row.declaration.get("rule")
    details: dict[str, Any] = {
        "decision": body.decision,
        "reason": reason,
        "rule": {k: rule[k] for k in ("table", "version", "rule", "requires", "covered")} if rule else None,
    }
    target = f"flow:{flow_id}"
    async with ctx.sessions() as s:
        waiting = await outbox.open_tx(s, outbox.Kind.FLOW_DECISION, target)
    if waiting is not None:
        raise DecisionUnconfirmed(
            f"a decision on flow {flow_id} (transaction {waiting}) is not mined yet; the registry applies it "
            "by itself once it is",
            details={"txHash": waiting},
        )
    payload = {
        "decision": code,
        "reason": reason,
        "rule": details["rule"],
        "actor": principal.org_name,
        "request_id": request_id,
    }
    pending_id: int | None
    try:  # the signed decision is in the outbox before it leaves
        receipt, pending_id = await outbox.transact_recorded(
            ctx,
            key,
            ctx.chain.flows.functions.decideFlow(flow_id, code, reason),
            outbox.Kind.FLOW_DECISION,
            target,
            payload,
            org_id=principal.org_id,
            sent_note="The decision was sent; the registry applies it by itself once it is mined",
        )
    except ChainRejected as exc:
        if (exc.details or {}).get("error") != "AlreadyDecided":
            raise
        # decided on-chain by a request that gave up before it was mined (503): the DB takes the chain's word
        receipt, ev = await _decision_on_chain(ctx, flow_id, row.tx_hash)
        code, reason = int(ev["decision"]), ev["reason"]
        details = {
            "decision": DECISION_NAMES[code],
            "reason": reason,
            "settledFromChain": True,
            "regulator": ev["regulator"],
            "rule": details["rule"],
        }
        pending_id = None
    ctx.crash_point("decision_mined")
    decided_at = datetime.fromtimestamp(await ctx.chain.block_timestamp(receipt["blockNumber"]), UTC)
    tx = hexs(receipt["transactionHash"])
    async with ctx.sessions() as s, s.begin():
        # claim the outbox row: if the settler applied the decision already, the DB holds it once
        if pending_id is None or await outbox.finish(s, pending_id, outbox.State.CONFIRMED):
            await _apply_decision(
                s,
                flow_id,
                code,
                reason,
                tx,
                decided_at,
                actor=principal.org_name,
                org_id=principal.org_id,
                request_id=request_id,
                details=details,
            )
        out = flow_public(await _row(s, flow_id))
    if DECISION_NAMES[code] != body.decision:
        raise AlreadyDecided(
            f"flow {flow_id} was {DECISION_NAMES[code]} already (on-chain, by {details['regulator']})",
            details={"flowId": flow_id, "status": DECISION_NAMES[code]},
        )
    return out | ({"settledFromChain": True} if details.get("settledFromChain") else {})


async def _apply_decision(
    s,
    flow_id: int,
    code: int,
    reason: str,
    tx: str,
    decided_at: datetime,
    *,
    actor: str,
    org_id: int | None,
    request_id: str,
    details: dict[str, Any],
) -> None:
    row = await _row(s, flow_id)
    row.decision, row.decision_reason, row.decision_tx = code, reason, tx
    row.decided_at = decided_at
    await audit.append(
        s,
        actor=actor,
        action="decide_flow",
        target=f"flow:{flow_id}",
        request_id=request_id,
        org_id=org_id,
        details={**details, "tx": tx},
    )


@outbox.settler(outbox.Kind.FLOW_DECISION)
async def _settle_decision(ctx, s, row, receipt: dict) -> None:
    """A decision mined after its request gave up (it timed out, or the process died): applied as
    the regulator made it, dated by its block."""
    p = row.payload
    mined = await ctx.chain.block_timestamp(receipt["blockNumber"])
    details = {
        "decision": DECISION_NAMES[p["decision"]],
        "reason": p["reason"],
        "rule": p["rule"],
        "settledFromChain": True,
    }
    await _apply_decision(
        s,
        int(row.target.split(":", 1)[1]),
        p["decision"],
        p["reason"],
        row.tx_hash,
        datetime.fromtimestamp(mined, UTC),
        actor=p["actor"],
        org_id=row.org_id,
        request_id=p["request_id"],
        details=details,
    )


async def _decision_on_chain(ctx, flow_id: int, declare_tx: str | None) -> tuple[dict, dict]:
    """The receipt and FlowDecided arguments of a flow's decision, found in the chain's logs."""
    start = 0
    if declare_tx:
        declared = await ctx.chain.receipt(declare_tx)
        start = int(declared["blockNumber"]) if declared else 0
    logs = await ctx.chain.logs(ctx.chain.flows.events.FlowDecided, start, flowId=flow_id)
    if not logs:
        raise ChainUnavailable(
            f"the chain says flow {flow_id} is decided, but its FlowDecided event was not found"
        )
    receipt = await ctx.chain.receipt(hexs(logs[-1]["transactionHash"]))
    return receipt, dict(logs[-1]["args"])
