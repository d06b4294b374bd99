"""The holder's own credentials (role holder, the enterprise a credential is about): read with its API
key, never another subject's. What `certledger-wallet fetch` calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from registry.api.deps import CtxDep, require
from registry.services import records
from registry.services.orgs import Principal

router = APIRouter(prefix="/v1/holder", tags=["holder"])
Holder = Annotated[Principal, Depends(require("holder"))]


@router.get("/credentials")
async def list_holder_credentials(
    ctx: CtxDep,
    p: Holder,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
):
    """The credentials issued to the calling organisation (its unified social credit code is their subject)."""
    async with ctx.sessions() as s:
        return await records.holder_credentials(s, p, limit=limit, offset=offset)


@router.get("/credentials/{credential_id}")
async def get_holder_credential(credential_id: str, ctx: CtxDep, p: Holder):
    """One of them, with its holder copy once anchored (404 for any credential that is not the caller's)."""
    async with ctx.sessions() as s:
        return await records.holder_credential(s, ctx, p, credential_id)
