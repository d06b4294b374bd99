from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from registry.api.deps import AnyPrincipal, CtxDep, IssuerOrAdmin, RequestId
from registry.api.routes.credentials import StatusChange
from registry.core.errors import Forbidden, NotFound
from registry.db.models import Batch
from registry.services import lifecycle, records

router = APIRouter(prefix="/v1/batches", tags=["batches"])

MAX_ID = 2**31 - 1  # the DB's integer ids; a larger one would fail in the query, not be "not found"
BatchId = Path(..., ge=1, le=MAX_ID)


@router.get("")
async def list_batches(
    ctx: CtxDep,
    p: AnyPrincipal,
    state: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
):
    if not p.has("admin", "issuer"):
        raise Forbidden("only issuers and admins list batches")
    q = select(Batch)
    if not p.has("admin"):
        q = q.where(Batch.issuer_org_id == p.org_id)
    if state:
        q = q.where(Batch.state == state)
    async with ctx.sessions() as s:
        rows = (await s.execute(q.order_by(Batch.id).limit(limit).offset(offset))).scalars().all()
    return {"items": [records.batch_summary(b) for b in rows]}


@router.get("/{batch_id}")
async def get_batch(ctx: CtxDep, p: AnyPrincipal, batch_id: int = BatchId):
    async with ctx.sessions() as s:
        b = await s.get(Batch, batch_id)
    if b is None:
        raise NotFound(f"no batch {batch_id}")
    if not (p.has("admin") or (p.has("issuer") and b.issuer_org_id == p.org_id)):
        raise Forbidden("only the issuing organisation or an admin reads a batch")
    return records.batch_summary(b)


for _action in ("revoke", "suspend", "reinstate"):

    def _make(action):
        async def change(
            ctx: CtxDep,
            p: IssuerOrAdmin,
            rid: RequestId,
            batch_id: int = BatchId,
            body: StatusChange | None = None,
        ):
            return await lifecycle.change_batch(ctx, p, batch_id, action, body.reason if body else None, rid)

        change.__name__ = f"{action}_batch"
        change.__doc__ = f"{action.capitalize()} a whole batch: on-chain first, the DB after confirmation."
        return change

    router.post(f"/{{batch_id}}/{_action}")(_make(_action))
