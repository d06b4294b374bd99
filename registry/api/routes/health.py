from datetime import UTC

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from registry.api.deps import BackgroundDep, CtxDep
from registry.db.models import as_utc
from registry.services import outbox

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(ctx: CtxDep, background: BackgroundDep):
    """ok, or degraded (chain node unreachable: issuance queues) — never an error for that."""
    checks = {}
    try:
        async with ctx.sessions() as s:
            await s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"error: {type(exc).__name__}"
    checks["chain"] = "ok" if await ctx.chain.is_up() else "unreachable"
    pending = await background.pipeline.pending() if checks["database"] == "ok" else None
    unconfirmed = await _unconfirmed(ctx) if checks["database"] == "ok" else None
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    body = {
        "status": status,
        "checks": checks,
        "pendingCredentialsAndBatches": pending,
        "unconfirmedTransactions": unconfirmed,
        "chainId": ctx.deployment.chain_id,
        "instance": ctx.settings.instance_id,
    }
    return JSONResponse(body, status_code=200 if checks["database"] == "ok" else 503)


async def _unconfirmed(ctx) -> dict:
    """Sent transactions whose outcome the DB does not hold yet (the settler finishes them): how
    many, and how long the oldest has waited — an operator alerts when that keeps growing."""
    from datetime import datetime

    async with ctx.sessions() as s:
        counts, oldest = await outbox.unconfirmed(s)
    return {
        "anchors": counts[outbox.Kind.ANCHOR],
        "statusChanges": counts[outbox.Kind.STATUS_CHANGE],
        "flowDeclarations": counts[outbox.Kind.FLOW_DECLARATION],
        "flowDecisions": counts[outbox.Kind.FLOW_DECISION],
        "registrations": counts[outbox.Kind.REGISTRATION],
        "pledgeRegistry": counts[outbox.Kind.PLEDGE_REGISTRY],
        "oldestSeconds": round((datetime.now(UTC) - as_utc(oldest)).total_seconds()) if oldest else None,
    }
