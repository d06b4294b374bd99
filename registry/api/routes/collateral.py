"""Data assets as collateral (issue #22, docs/FORMAT.md §17): the data authority's registration,
dispute and cancellation of a certificate's asset, and a lender's pledge and release — relayed to
PledgeRegistry through the outbox (registry/services/collateral.py). ``GET …/pledge`` (the pledge
proof) is in ``pledges.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from registry.api.deps import AnyPrincipal, CtxDep, RequestId
from registry.services import collateral

router = APIRouter(prefix="/v1/credentials", tags=["collateral"])

Rank = Annotated[
    int, Field(ge=1, le=255, description="the pledge's rank (1 unless the asset allows ranked pledges)")
]
Ref = Annotated[
    str, Field(min_length=1, max_length=66, description="up to 32 bytes of text, or 0x + 64 hex digits")
]
Signature = Annotated[
    str, Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="a 65-byte secp256k1 signature")
]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
Reason = Annotated[int, Field(ge=0, le=255)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(_Body):
    holder: Address = Field(description="the holder's account: it signs its consent to each pledge")
    ranks: int = Field(1, ge=1, le=255, description="how many ranked pledges the asset's terms allow")


class CaseIn(_Body):
    caseRef: Ref = Field(description="the dispute's case reference")


class CancelIn(_Body):
    reason: Reason = 0


class TransferIn(_Body):
    holder: Address = Field(
        description="the new holder's account: it signs its consent to pledges from now on"
    )
    newCredentialId: str = Field(
        max_length=64, description="the certificate re-issued to the new holder (same issuer and assetId)"
    )


class ChangeIn(_Body):
    changeDigest: Ref = Field(description="the digest of the changed registration record")


class PledgeIn(_Body):
    rank: Rank = 1
    lender: Address
    loanRef: Ref
    deadline: int = Field(ge=0, le=2**64 - 1, description="Unix time after which the consents no longer hold")
    holderSignature: Signature = Field(description="the holder's EIP-712 Pledge signature")
    lenderSignature: Signature = Field(description="the lender's EIP-712 Pledge signature")


class ReleaseIn(_Body):
    lenderSignature: Signature = Field(description="the lender's EIP-712 Release signature")


CredentialId = Annotated[str, Path(max_length=64)]


@router.post("/{credential_id}/asset/register")
async def register_asset(
    credential_id: CredentialId, body: RegisterIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """The data authority (the certificate's issuer, or an admin) registers the certificate's asset
    on-chain (首次登记): it gets its registration number; the holder's account consents to pledges."""
    return await collateral.act(ctx, p, credential_id, "register", body.model_dump(), rid)


@router.post("/{credential_id}/asset/dispute")
async def open_dispute(
    credential_id: CredentialId, body: CaseIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """The data authority opens a dispute (异议登记): no pledge or transfer until it is resolved."""
    return await collateral.act(ctx, p, credential_id, "dispute", body.model_dump(), rid)


@router.post("/{credential_id}/asset/resolve")
async def resolve_dispute(
    credential_id: CredentialId, body: CaseIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """The data authority resolves the asset's dispute."""
    return await collateral.act(ctx, p, credential_id, "resolve", body.model_dump(), rid)


@router.post("/{credential_id}/asset/cancel")
async def cancel_asset(
    credential_id: CredentialId, body: CancelIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """The data authority cancels the asset's registration (注销登记); refused while it is pledged."""
    return await collateral.act(ctx, p, credential_id, "cancel", body.model_dump(), rid)


@router.post("/{credential_id}/asset/transfer")
async def transfer_asset(
    credential_id: CredentialId, body: TransferIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """The data authority transfers the asset (转移登记) to the holder of the certificate it re-issued
    (``newCredentialId``), linking the two on-chain (``AssetTransferred`` carries the new
    certificate's targetHash); refused while pledged or disputed. The old certificate is then
    revoked as superseded (``POST /v1/credentials/{id}/revoke``)."""
    return await collateral.act(ctx, p, credential_id, "transfer", body.model_dump(), rid)


@router.post("/{credential_id}/asset/change")
async def change_registration(
    credential_id: CredentialId, body: ChangeIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """The data authority records a change registration (变更登记): the digest of the changed record."""
    return await collateral.act(ctx, p, credential_id, "change", body.model_dump(), rid)


@router.post("/{credential_id}/pledges")
async def pledge_asset(
    credential_id: CredentialId, body: PledgeIn, ctx: CtxDep, p: AnyPrincipal, rid: RequestId
) -> dict:
    """Register a pledge of the certificate's asset, with the holder's and the lender's EIP-712
    consent; refused on-chain if the rank is pledged already (``AlreadyPledged``) or the asset is
    disputed or cancelled."""
    return await collateral.act(ctx, p, credential_id, "pledge", body.model_dump(), rid)


@router.post("/{credential_id}/pledges/{rank}/release")
async def release_pledge(
    credential_id: CredentialId,
    rank: Annotated[int, Path(ge=1, le=255)],
    body: ReleaseIn,
    ctx: CtxDep,
    p: AnyPrincipal,
    rid: RequestId,
) -> dict:
    """The lender releases its pledge (its EIP-712 Release signature)."""
    return await collateral.act(ctx, p, credential_id, "release", {"rank": rank, **body.model_dump()}, rid)


@router.post("/{credential_id}/pledges/{rank}/cancel")
async def cancel_pledge(
    credential_id: CredentialId,
    rank: Annotated[int, Path(ge=1, le=255)],
    body: CancelIn,
    ctx: CtxDep,
    p: AnyPrincipal,
    rid: RequestId,
) -> dict:
    """The data authority (or a court order, through it) cancels a pledge."""
    return await collateral.act(
        ctx, p, credential_id, "cancel_pledge", {"rank": rank, **body.model_dump()}, rid
    )
