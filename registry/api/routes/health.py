from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request):
    """ok, or degraded (chain node unreachable: issuance queues) — never an error for that."""
    ctx = request.app.state.ctx
    checks = {}
    try:
        async with ctx.sessions() as s:
            await s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"error: {type(exc).__name__}"
    checks["chain"] = "ok" if await ctx.chain.is_up() else "unreachable"
    pipeline = getattr(ctx, "pipeline", None)
    pending = await pipeline.pending() if pipeline and checks["database"] == "ok" else None
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    body = {"status": status, "checks": checks, "pendingCredentialsAndBatches": pending,
            "chainId": ctx.deployment.chain_id, "instance": ctx.settings.instance_id}
    return JSONResponse(body, status_code=200 if checks["database"] == "ok" else 503)
