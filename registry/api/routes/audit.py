from fastapi import APIRouter

from registry.api.deps import Admin, CtxDep
from registry.services.reconcile import audit

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit")
async def get_audit(ctx: CtxDep, p: Admin):
    """Compare the chain (events, spot-checked with views) with the registry's records (admin)."""
    return (await audit(ctx)).to_json()
