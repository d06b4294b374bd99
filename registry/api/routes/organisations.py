from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from registry.api.deps import Admin, AnyPrincipal, CtxDep, RequestId
from registry.api.routes.credentials import CredType
from registry.core.errors import Forbidden, NotFound
from registry.db.models import ApiKey, Organisation
from registry.services import audit, onboarding
from registry.services.orgs import create_organisation, issue_api_key

router = APIRouter(prefix="/v1", tags=["organisations"])

MAX_ID = 2**31 - 1  # the DB's integer ids: a larger one would fail in the query, not be "not found"
OrgId = Path(..., ge=1, le=MAX_ID)
NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"  # no NUL (PostgreSQL text cannot hold it) nor other control characters
JURISDICTION = r"^(CN(-[A-Z]{2})?|HK|MO|TW|[A-Z]{2}(-[A-Z0-9]{1,3})?|[1-6][0-9]{5})$"


class SignerRef(BaseModel):
    """An issuer's own signer (``certledger signer`` or a Web3Signer-compatible one): the registry
    registers its address and never holds the key."""

    url: str = Field(min_length=8, max_length=300, pattern=r"^https?://[^\s]+$")
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    sm2PublicKey: str | None = Field(
        None, pattern=r"^0x[0-9a-fA-F]{128}$", description="sm2-sm3 suite: x ‖ y"
    )


class OrganisationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    identifier: str = Field(
        min_length=1, max_length=64, pattern=NO_CONTROL, description="USCC for a mainland entity"
    )
    jurisdiction: str = Field(pattern=JURISDICTION)
    roles: list[Literal["admin", "issuer", "verifier", "regulator", "exporter", "holder"]] = Field(
        min_length=1
    )
    suite: Literal["secp256k1", "sm2-sm3"] = "secp256k1"
    credentialTypes: list[CredType] = []
    signer: SignerRef | None = None


def org_public(o: Organisation) -> dict:
    return {
        "id": o.id,
        "name": o.name,
        "identifier": o.identifier,
        "jurisdiction": o.jurisdiction,
        "roles": o.roles,
        "chainAccount": o.chain_account,
        "issuerId": o.issuer_id,
        "suite": o.suite,
        "signerUrl": o.signer_url,
        "createdAt": o.created_at.isoformat(),
    }


@router.post("/organisations", status_code=201)
async def register_organisation(body: OrganisationCreate, ctx: CtxDep, p: Admin, rid: RequestId):
    """Onboard an organisation (admin). Issuers, exporters and regulators are registered on-chain;
    the API key is shown once. ``onChainPending`` names the on-chain steps not yet confirmed when
    the chain node stopped answering: the registry finishes them by itself (registry/services/onboarding.py)."""
    async with ctx.sessions() as s, s.begin():
        org, key = await create_organisation(
            s,
            ctx,
            name=body.name,
            identifier=body.identifier,
            jurisdiction=body.jurisdiction,
            roles=list(dict.fromkeys(body.roles)),
            suite=body.suite,
            credential_types=body.credentialTypes,
            signer=body.signer.model_dump() if body.signer else None,
            actor=p.org_name,
            request_id=rid,
        )
    pending = await onboarding.dispatch(ctx, org.id)
    async with ctx.sessions() as s:
        org = await s.get(Organisation, org.id)
    return {"organisation": org_public(org), "apiKey": key, "onChainPending": pending}


@router.get("/organisations")
async def list_organisations(ctx: CtxDep, p: AnyPrincipal):
    async with ctx.sessions() as s:
        orgs = (await s.execute(select(Organisation).order_by(Organisation.id))).scalars().all()
    return {"items": [org_public(o) for o in orgs]}


@router.get("/organisations/{org_id}")
async def get_organisation(ctx: CtxDep, p: AnyPrincipal, org_id: int = OrgId):
    async with ctx.sessions() as s:
        o = await s.get(Organisation, org_id)
    if o is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org_public(o)


@router.post("/organisations/{org_id}/api-keys", status_code=201)
async def create_api_key(ctx: CtxDep, p: Admin, rid: RequestId, org_id: int = OrgId):
    async with ctx.sessions() as s, s.begin():
        o = await s.get(Organisation, org_id)
        if o is None:
            raise NotFound(f"organisation {org_id} does not exist")
        key = await issue_api_key(s, o, "issued by admin")
        await audit.append(
            s,
            actor=p.org_name,
            action="issue_api_key",
            target=f"org:{org_id}",
            request_id=rid,
            org_id=p.org_id,
        )
    return {"apiKey": key}


@router.delete("/api-keys/{key_id}")
async def revoke_key(key_id: str, ctx: CtxDep, p: AnyPrincipal, rid: RequestId):
    """Revoke an API key: an admin any, an organisation its own."""
    async with ctx.sessions() as s, s.begin():
        k = (await s.execute(select(ApiKey).where(ApiKey.key_id == key_id))).scalar()
        if k is None:
            raise NotFound(f"no API key {key_id}")
        if not p.has("admin") and k.org_id != p.org_id:
            raise Forbidden("you may revoke only your own organisation's keys")
        await s.execute(update(ApiKey).where(ApiKey.id == k.id).values(revoked_at=datetime.now(UTC)))
        ctx.auth_cache.clear()
        await audit.append(
            s,
            actor=p.org_name,
            action="revoke_api_key",
            target=f"key:{key_id}",
            request_id=rid,
            org_id=p.org_id,
        )
    return {"revoked": key_id}
