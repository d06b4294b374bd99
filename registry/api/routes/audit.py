from fastapi import APIRouter, Request

from registry.api.deps import Admin
from registry.services.reconcile import audit

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit")
async def get_audit(request: Request, p: Admin):
    """Compare the chain (events, spot-checked with views) with the registry's records (admin)."""
    return (await audit(request.app.state.ctx)).to_json()
