"""``GET /v1/credentials/{id}/proof``: a fresh proof package (docs/FORMAT.md §12) for one credential.

Public like the verify page (a holder or a bank refreshes the evidence without an API key) and
rate-limited per client like it (registry/api/ratelimit.py)."""

from fastapi import APIRouter, Depends

from registry.api.deps import CtxDep, public_rate_limit
from registry.api.openapi import also
from registry.services import records
from registry.services.proofs import credential_proof_package

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])


@router.get(
    "/{credential_id}/proof", dependencies=[Depends(public_rate_limit)], responses=also(409, 503)
)  # not anchored yet; the chain node unreachable
async def credential_proof(credential_id: str, ctx: CtxDep):
    """The credential's anchor and status proven by eth_getProof against the latest block."""
    async with ctx.sessions() as s:
        cred = await records.load_credential(s, credential_id)
        package = await credential_proof_package(s, ctx, cred)
    return {"credentialId": cred.id, "proofPackage": package}
