from fastapi import APIRouter

from registry.api.deps import AnyPrincipal, CtxDep
from registry.services.bundle import export_bundle

router = APIRouter(prefix="/v1", tags=["trust bundle"])


@router.get("/trust-bundle")
async def trust_bundle(ctx: CtxDep, p: AnyPrincipal, proofs: bool = False):
    """The signed trust bundle as of the latest block, for offline verification; ``proofs=true``
    adds a validator-sealed proof package for every anchored credential (FORMAT.md §16)."""
    return await export_bundle(ctx, proofs=proofs)
